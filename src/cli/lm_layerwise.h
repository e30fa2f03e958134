/* The --layerwise file of rewire lm prune: one block map's sparsity per
 * line (lm_layerwise.c). */
#ifndef RW_CLI_LM_LAYERWISE_H
#define RW_CLI_LM_LAYERWISE_H

#include "rewire.h"

/* Reads path into sparsity [rw_lm_prune_map_count(m)]: lines "NAME S"
 * (NAME one of the model's block maps, S in [0, 1)), blank lines and
 * lines starting with '#' skipped; maps the file does not name get
 * `fallback`. Prints the error (file, line, what was expected) and
 * returns 1 for a file that cannot be read, an unknown or repeated name,
 * or a sparsity out of range. */
int lm_layerwise_read(const rw_model *m, const char *path, double fallback, double *sparsity);

/* Writes sparsity [rw_lm_prune_map_count(m)] in that format, through a
 * temporary file renamed into place; `comment` (may be NULL) becomes a
 * '#' line at the top. Prints the error and returns 1 on failure. */
int lm_layerwise_write(const rw_model *m, const char *path, const char *comment,
                       const double *sparsity);

#endif
