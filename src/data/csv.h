/* CSV loading: rw_dataset_load_csv reads the file and calls
 * csv_load_memory, which the fuzz harness calls directly. */
#ifndef RW_DATA_CSV_H
#define RW_DATA_CSV_H

#include <stddef.h>

#include "rewire.h"

/* rw_dataset_load_csv over text[0..len) (NUL bytes in it are refused, so
 * it need not be NUL-terminated); `name` stands for the file in messages. */
rw_status csv_load_memory(const char *name, const char *text, size_t len,
                          const rw_csv_options *options, rw_dataset **out);

#endif
