/* libFuzzer harness for the safetensors reader (io/safetensors.c): any
 * bytes must either parse into tensors that lie inside the buffer, or fail
 * with a message that names the file. Sanitizers catch the rest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

#define NAME "fuzz.safetensors"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file f;
    if (st_read_memory(NAME, data, size, &f) != RW_OK) {
        /* Every failure names the file. */
        if (strncmp(rw_last_error(), NAME ": ", strlen(NAME) + 2) != 0) abort();
        return 0;
    }
    const unsigned char *lo = f.buffer, *hi = lo + size;
    unsigned sum = 0;
    for (int k = 0; k < f.count; k++) {
        const st_tensor *t = &f.tensors[k];
        if (t->nbytes != (size_t)t->count * st_dtype_size(t->dtype)) abort();
        const unsigned char *p = t->data;
        if (t->nbytes && (p < lo || p + t->nbytes > hi)) abort();
        for (size_t i = 0; i < t->nbytes; i++) sum += p[i]; /* ASan checks each byte */
        if (st_find(&f, t->name) == NULL) abort();
    }
    for (int k = 0; k < f.meta_count; k++) sum += (unsigned)strlen(f.meta_values[k]);
    st_file_free(&f);
    return (int)(sum & 0); /* keeps the reads */
}
