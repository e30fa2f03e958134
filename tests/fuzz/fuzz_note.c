/* libFuzzer harness for what `rewire train --resume` reads from a
 * checkpoint's note (src/cli/train_checkpoint.c: resume_flags, the JSON
 * object of the run's flags that rw_run_resume hands back) and for
 * --max-memory sizes
 * (parse_memory_size). The first byte picks which; the rest is the text.
 * Any text must be taken or refused with a message, never crash. The
 * messages go to stderr: run with -close_fd_mask=2 (scripts/fuzz.sh does). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/train_checkpoint.h"

static const char *choices[] = {"a", "b", "c", NULL};

typedef struct {
    const char *data, *out;
    double lr;
    int epochs, nesterov, init;
} flags;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] & 1) {
        int64_t v = parse_memory_size(text);
        if (v < -1) abort();
        free(text);
        return 0;
    }
    flags f = {"fashion-mnist", NULL, 0.05, 10, 0, 2}, defaults = f;
    arg_spec specs[] = {
        {"data", ARG_STRING, &f.data, "DIR", "", NULL, 0, 0},
        {"out", ARG_STRING, &f.out, "PATH", "", NULL, 0, 0}, /* free: not read from the note */
        {"lr", ARG_DOUBLE, &f.lr, "LR", "", NULL, 0, 1},
        {"epochs", ARG_INT, &f.epochs, "N", "", NULL, 1, 100},
        {"nesterov", ARG_FLAG, &f.nesterov, NULL, "", NULL, 0, 0},
        {"init", ARG_CHOICE, &f.init, "CHOICE", "", choices, 0, 0},
    };
    void *keep = NULL;
    int rc = resume_flags(text, "fuzz.ckpt", specs, 6, &f, &defaults, &keep);
    if (rc == 0) {
        /* What was taken must be usable: a choice in range (or -1, "left
         * to a preset", which the dst branch's notes may hold), strings
         * readable. */
        if (f.init < -1 || f.init > 2) abort();
        if (f.data) (void)strlen(f.data);
    } else if (keep) {
        abort();
    }
    resume_note_free(keep);
    free(text);
    return 0;
}
