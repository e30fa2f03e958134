/* Training progress on the terminal: a redrawn bar when stderr is a
 * terminal, nothing between epochs otherwise (plain lines are printed by
 * the caller at each evaluation). */
#ifndef RW_CLI_PROGRESS_H
#define RW_CLI_PROGRESS_H

#include "rewire.h"

typedef struct {
    int tty;          /* stderr is a terminal */
    int epochs;       /* total epochs, for the ETA */
    double last_draw; /* seconds since epoch start of the last redraw */
    double done_seconds; /* training seconds of finished epochs */
} progress_bar;

void progress_init(progress_bar *p, int epochs);
/* An rw_progress_fn; user is a progress_bar*. */
int progress_update(const rw_progress *progress, void *user);
/* Clears the bar so a plain line can be printed. */
void progress_clear(progress_bar *p);

#endif
