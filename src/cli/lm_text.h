/* Where the text of `rewire lm` comes from (lm_text.c). */
#ifndef RW_CLI_LM_TEXT_H
#define RW_CLI_LM_TEXT_H

#include <stddef.h>

/* The file behind --text: the path itself, or for "kjv" the King James
 * Bible (Debian's bible-kjv), dumped without verse labels into
 * $XDG_CACHE_HOME/rewire/kjv.txt (~/.cache/rewire) on first use. Prints
 * the error and returns 1 when that cannot be done. */
int lm_text_path(const char *text, char *buf, size_t size);

#endif
