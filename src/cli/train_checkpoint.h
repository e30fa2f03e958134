/* What makes `rewire train` survive a crash or a divergence: the note a
 * checkpoint carries (the run's flags and how far the log got), resuming
 * with those flags, and the memory limit (--max-memory). The checkpoint
 * itself is the library's (rw_trainer_save_checkpoint). */
#ifndef RW_CLI_TRAIN_CHECKPOINT_H
#define RW_CLI_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cli/args.h"

/* "512M", "4G", "1.5G", "100000" (bytes; K, M, G, T are powers of 1024,
 * an optional trailing "B" or "iB"): the byte count, 0 for "0" (no limit),
 * -1 if malformed. */
int64_t parse_memory_size(const char *s);

/* "1.50 GiB" and the like. */
void format_bytes(char *buf, size_t size, int64_t bytes);

/* The flags that shape a run (all but threads, out, log, quiet,
 * checkpoint, checkpoint-every, resume, max-memory) as a JSON object, for
 * the run's checkpoints (rw_run_config.checkpoint_flags); malloc'ed.
 * values and defaults are the flags struct the specs point into and a
 * copy of it as it was before parsing. */
char *train_flags_json(const arg_spec *specs, int n_specs, const void *values,
                       const void *defaults);

/* Sets every run-shaping flag to the checkpoint's (stored_flags, the
 * object train_flags_json made; NULL: the checkpoint has none), refusing a
 * flag given with another value (returns 2) or a missing or malformed one
 * (1), with a message. *keep holds the strings flags now point into; free
 * it with resume_note_free after the run. */
int resume_flags(const char *stored_flags, const char *path, const arg_spec *specs, int n_specs,
                 const void *flags, const void *defaults, void **keep);
void resume_note_free(void *keep);

#endif
