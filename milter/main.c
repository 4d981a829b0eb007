/*
 * main.c - stripe-milter daemon entry point (placeholder until the milter issue lands).
 */
#include "config.h"

#include <stdio.h>

int main(void)
{
	fprintf(stderr, "stripe-milter: the daemon is not built yet\n");
	return 1;
}
