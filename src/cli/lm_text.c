/* The text a language-model command reads: a file, or "kjv", the King
 * James Bible from Debian's bible-kjv package, dumped once into a cache. */
#include "cli/lm_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KJV_RANGE "gen1:1-rev22:21"

/* $XDG_CACHE_HOME/rewire or ~/.cache/rewire, created. */
static int cache_dir(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char base[3500];
    if (xdg && *xdg) snprintf(base, sizeof base, "%s", xdg);
    else if (home && *home) snprintf(base, sizeof base, "%s/.cache", home);
    else snprintf(base, sizeof base, "/tmp");
    mkdir(base, 0755);
    snprintf(buf, size, "%s/rewire", base);
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Writes the verses without their "Ge1:1 " labels to path (through
 * path.tmp and a rename, so a half-written dump is never taken). */
static int dump_kjv(const char *path)
{
    if (access("/usr/bin/bible", X_OK) != 0 || access("/usr/lib/bible.data", R_OK) != 0) {
        fprintf(stderr, "rewire lm: --text kjv needs Debian's bible-kjv package (apt-get install "
                        "bible-kjv, or scripts/install-deps.sh data); or give --text FILE\n");
        return 1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    FILE *in = popen("/usr/bin/bible -f -p /usr/lib '" KJV_RANGE "'", "r");
    if (!out || !in) {
        fprintf(stderr, "rewire lm: cannot write %s or run bible: %s\n", tmp, strerror(errno));
        if (out) fclose(out);
        if (in) pclose(in);
        unlink(tmp);
        return 1;
    }
    char line[65536];
    long lines = 0;
    while (fgets(line, sizeof line, in)) {
        const char *text = strchr(line, ' ');
        fputs(text ? text + 1 : line, out);
        lines++;
    }
    int status = pclose(in);
    if (fclose(out) != 0 || status != 0 || lines < 30000) {
        fprintf(stderr, "rewire lm: bible -f -p /usr/lib '%s' gave %ld lines (status %d), expected "
                        "the whole Bible (31102 verses)\n", KJV_RANGE, lines, status);
        unlink(tmp);
        return 1;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "rewire lm: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

int lm_text_path(const char *text, char *buf, size_t size)
{
    if (strcmp(text, "kjv") != 0) {
        snprintf(buf, size, "%s", text);
        return 0;
    }
    char dir[4000];
    if (cache_dir(dir, sizeof dir) != 0) {
        fprintf(stderr, "rewire lm: cannot create the cache folder %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(buf, size, "%s/kjv.txt", dir);
    if (access(buf, R_OK) == 0) return 0;
    return dump_kjv(buf);
}
