/* rewire lm prune --layerwise FILE / --layerwise-out FILE. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/lm_layerwise.h"

int lm_layerwise_read(const rw_model *m, const char *path, double fallback, double *sparsity)
{
    int maps = rw_lm_prune_map_count(m);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "rewire lm prune: --layerwise %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *seen = calloc((size_t)maps + 1, 1);
    if (!seen) {
        fclose(f);
        fprintf(stderr, "rewire lm prune: out of memory\n");
        return 1;
    }
    for (int i = 0; i < maps; i++) sparsity[i] = fallback;
    char line[1024];
    int no = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        no++;
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, "rewire lm prune: --layerwise %s line %d: longer than %d characters\n",
                    path, no, (int)sizeof line - 2);
            rc = 1;
            break;
        }
        char name[256], rest[2];
        const char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p || *p == '#') continue;
        double s;
        if (sscanf(p, "%255s %lf %1s", name, &s, rest) != 2) {
            fprintf(stderr, "rewire lm prune: --layerwise %s line %d: expected 'MAP SPARSITY' "
                            "(blocks.0.attn.qkv 0.7)\n", path, no);
            rc = 1;
            break;
        }
        int i = 0;
        while (i < maps && strcmp(rw_lm_prune_map_name(m, i), name) != 0) i++;
        if (i == maps) {
            fprintf(stderr, "rewire lm prune: --layerwise %s line %d: '%s' is not a block map of "
                            "the model (blocks.0.attn.qkv to %s)\n", path, no, name,
                    rw_lm_prune_map_name(m, maps - 1));
            rc = 1;
        } else if (seen[i]) {
            fprintf(stderr, "rewire lm prune: --layerwise %s line %d: %s is given twice\n", path,
                    no, name);
            rc = 1;
        } else if (!(s >= 0.0 && s < 1.0)) {
            fprintf(stderr, "rewire lm prune: --layerwise %s line %d: sparsity %g of %s, expected "
                            "[0, 1)\n", path, no, s, name);
            rc = 1;
        } else {
            seen[i] = 1;
            sparsity[i] = s;
        }
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "rewire lm prune: --layerwise %s: read error\n", path);
        rc = 1;
    }
    fclose(f);
    free(seen);
    return rc;
}

int lm_layerwise_write(const rw_model *m, const char *path, const char *comment,
                       const double *sparsity)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "rewire lm prune: --layerwise-out %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    if (comment) fprintf(f, "# %s\n", comment);
    /* %.17g: read back, each sparsity is the same double. */
    for (int i = 0; i < rw_lm_prune_map_count(m); i++)
        fprintf(f, "%s %.17g\n", rw_lm_prune_map_name(m, i), sparsity[i]);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "rewire lm prune: --layerwise-out %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}
