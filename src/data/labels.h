/* The distinct labels of a CSV label column and the classes they become:
 * numbers in numeric order when every label is a finite number (1 and 1.0
 * are one class), otherwise strings in byte order. */
#ifndef RW_DATA_LABELS_H
#define RW_DATA_LABELS_H

#include "rewire.h"

typedef struct {
    int count;         /* distinct strings, ids 0..count-1 in order of first appearance */
    char **text;       /* [count] each label's text */
    double *value;     /* [count] its value when it is a finite number */
    int *line;         /* [count] the line it first appears on */
    int all_numeric;   /* every label so far is a finite number */
    int cap;
    int *slot;         /* hash table: id + 1, or 0 for empty */
    unsigned slot_mask;
} label_set;

void label_set_init(label_set *s);
void label_set_free(label_set *s);

/* The id of `text` (added, as the next id, if it is new). name: the file,
 * for the out-of-memory message. */
rw_status label_set_add(label_set *s, const char *name, const char *text, int line, int *id);

/* The classes: class_of[id] (malloc'ed, [s->count]) and rep[k] (malloc'ed,
 * [*classes]): the id whose text names class k (for numbers, the first
 * spelling met). RW_ERR_NO_MEMORY naming `name`. */
rw_status label_set_classes(const label_set *s, const char *name, int **class_of, int **rep,
                            int *classes);

#endif
