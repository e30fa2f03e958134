/* libFuzzer harness for the "lm" object of a language model run's
 * checkpoint note (run/lm_run.c: lm_parse_note), which rw_run_resume reads
 * back: any text must be taken as a valid schedule or refused with a
 * message naming the file, never crash. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run/run_internal.h"

#define NAME "fuzz.safetensors"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (!o) return 0;
    struct rw_run r;
    memset(&r, 0, sizeof r);
    rw_status st = lm_parse_note(&r, o, NAME);
    json_decref(o);
    if (st != RW_OK) {
        if (strncmp(rw_last_error(), NAME ": ", strlen(NAME) + 2) != 0) abort();
        return 0;
    }
    /* What it took is a schedule the run accepts. */
    if (!r.lm || lm_check_schedule(&r.lm_cfg, r.lm_batch) != RW_OK) abort();
    return 0;
}
