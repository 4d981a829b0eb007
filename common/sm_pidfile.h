/*
 * sm_pidfile.h - the daemon's pid file, created safely and held locked (Postfix style).
 *
 * Interface:
 *	sm_pidfile_open(path, err, errlen) opens or creates path without following a symbolic
 *	link (O_NOFOLLOW, mode 0644), refuses anything but a regular file with one link owned by
 *	the caller, takes an exclusive lock on it (flock) that is held while the returned
 *	descriptor stays open, and writes the current process id into it. A file left by a
 *	daemon that died is simply reused (nothing holds its lock); a file locked by a running
 *	daemon is refused, naming its pid. Returns the descriptor (close-on-exec) or -1 with err.
 *	sm_pidfile_close(fd, path) removes the file (when the folder lets the current user) and
 *	closes the descriptor.
 *
 * Diagnostics: err names the file, the rule broken or the other daemon's pid.
 *
 * Known limits: the lock is advisory (flock) and local; the file is never handed to a less
 *	privileged user (a root script that kills what a pid file says must not trust a file
 *	the daemon's user can write), so after privileges are dropped the file is removed only
 *	when its folder is writable by that user; a file left behind is harmless.
 */
#ifndef SM_PIDFILE_H
#define SM_PIDFILE_H

#include <stddef.h>

int sm_pidfile_open(const char *path, char *err, size_t errlen);
void sm_pidfile_close(int fd, const char *path);

#endif
