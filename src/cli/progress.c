#include "cli/progress.h"

#include <stdio.h>
#include <unistd.h>

void progress_init(progress_bar *p, int epochs)
{
    p->tty = isatty(fileno(stderr));
    p->epochs = epochs;
    p->last_draw = -1;
    p->done_seconds = 0;
}

int progress_update(const rw_progress *g, void *user)
{
    progress_bar *p = user;
    if (!p->tty) return 0;
    int last = g->samples == g->epoch_samples;
    if (!last && g->seconds - p->last_draw < 0.1) return 0;
    p->last_draw = g->seconds;
    double frac = g->epoch_samples ? (double)g->samples / (double)g->epoch_samples : 0;
    double rate = g->seconds > 0 ? (double)g->samples / g->seconds : 0;
    double remaining_samples = (double)(g->epoch_samples - g->samples) +
                               (double)(p->epochs - g->epoch - 1) * (double)g->epoch_samples;
    double eta = rate > 0 ? remaining_samples / rate : 0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\repoch %d/%d [%s] %3.0f%%  %8.0f samples/s  loss %.4f  ETA %d:%02d ",
            g->epoch + 1, p->epochs, bar, 100 * frac, rate, g->loss, (int)(eta / 60),
            (int)eta % 60);
    fflush(stderr);
    return 0;
}

void progress_clear(progress_bar *p)
{
    if (!p->tty) return;
    fprintf(stderr, "\r%100s\r", "");
    fflush(stderr);
    p->last_draw = -1;
}
