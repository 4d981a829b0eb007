/*
 * th_alloc.h - a counting allocator for allocation-failure tests (curl's "torture" way):
 * while armed, every allocation is counted and the Nth returns NULL.
 *
 * Counted: the project's malloc, calloc, realloc, strdup and strndup, when the test program
 * is linked with $(TH_ALLOC_WRAP) (-Wl,--wrap: only calls from the project's objects are
 * redirected, not the libraries' own); jansson's builders (json_set_alloc_funcs), libcurl
 * (curl_global_init_mem) and OpenSSL (CRYPTO_set_mem_functions) after th_alloc_hooks().
 * Not counted: jansson's parser (json_loadb is wrapped to count nothing inside: jansson 2.14
 * does not survive a failed allocation while lexing - assert(0) in lex_scan_string, or a
 * free() of a pointer it never allocated, both seen - a library bug no caller can handle);
 * hiredis 0.14 (Debian 12) has no allocator hook; libc's own (getaddrinfo, pthread_create).
 *
 * Interface:
 *	th_alloc_hooks()	first thing in main(), before any library allocates.
 *	th_alloc_arm(n)		start counting from 0 on every thread; allocation n fails (0: none).
 *	th_alloc_disarm()	stop; returns how many were counted.
 *	th_alloc_injected()	whether the armed run made its allocation fail.
 *	th_alloc_sites()	distinct call sites that were made to fail so far.
 */
#ifndef TH_ALLOC_H
#define TH_ALLOC_H

#include <stdbool.h>

void th_alloc_hooks(void);
void th_alloc_arm(long fail_at);
long th_alloc_disarm(void);
bool th_alloc_injected(void);
int th_alloc_sites(void);

/* 0 when LeakSanitizer found no new leak (always 0 without ASan). */
int th_alloc_leak_check(void);

#endif
