#include <stddef.h>
struct node { int value; struct node *next; };
struct node *push(struct node *head, int value);
int total(const struct node *head);
void free_all(struct node *head);
size_t count_words(const char *text);
