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

/* The note saved in each checkpoint: {"flags": {every flag that shapes the
 * run}, "log_bytes": N}. `flags` is the struct the specs point into.
 * Returns a malloc'ed string or NULL. */
char *train_note(const arg_spec *specs, int n_specs, long log_bytes);

/* Resuming: takes the run-shaping flags from the checkpoint's note into
 * the specs' targets. A flag given on the command line that differs from
 * both its default (in `defaults`, a copy of the flags struct made before
 * parsing, which starts at `flags`) and the checkpoint's value is an
 * error: the message names both values and 2 is returned. 1 for a
 * malformed note (message printed), 0 on success. String values point
 * into *keep, freed by resume_note_free after the run. */
int resume_flags(const char *note, const char *path, const arg_spec *specs, int n_specs,
                 const void *flags, const void *defaults, void **keep, long *log_bytes);
void resume_note_free(void *keep);

#endif
