/* A cache of decompressed IDX data sets: rw_dataset_load keeps each split
 * it inflates from gzip as one uncompressed file, and reads that file
 * instead while the two source files are unchanged (same size, time of
 * last change and inode). Inflating Fashion-MNIST's training images is
 * the largest fixed cost of a short run (0.1 s with ISA-L, 0.3 s with
 * zlib); reading them back from the page cache takes a few ms.
 *
 * Where: $REWIRE_CACHE_DIR, else $XDG_CACHE_HOME/rewire, else
 * $HOME/.cache/rewire; REWIRE_CACHE_DIR=off turns the cache off. A cache
 * file is checked whole (its version-2 fingerprint, and its byte counts,
 * which give the training set's mean and deviation without a pass over
 * it) before it is used; a file that fails the check, or that cannot be
 * written, only costs the inflation: the data always come from the
 * sources when the cache cannot give them. Writes are atomic (a temporary
 * file renamed). A file that is used stays mapped read-only while its
 * dataset lives (a file rewritten in place under a running process would
 * end it with SIGBUS; rewire never does that, it renames). */
#ifndef RW_DATA_IDX_CACHE_H
#define RW_DATA_IDX_CACHE_H

#include "data/dataset.h"

/* The split in images + labels, from the cache when it holds it, else
 * loaded (rw_dataset_load_idx) and then cached. */
rw_status idx_cache_load(const char *images, const char *labels, rw_dataset **out);

#endif
