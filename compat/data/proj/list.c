#include <stdlib.h>
#include "proj.h"
struct node *push(struct node *head, int value) {
    struct node *n = malloc(sizeof *n);
    if (!n) abort();
    n->value = value;
    n->next = head;
    return n;
}
int total(const struct node *head) {
    int t = 0;
    for (; head; head = head->next) t += head->value;
    return t;
}
void free_all(struct node *head) {
    while (head) { struct node *n = head->next; free(head); head = n; }
}
