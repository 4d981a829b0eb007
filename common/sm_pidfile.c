/*
 * sm_pidfile.c - the daemon's pid file, created safely and held locked. See sm_pidfile.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sm_pidfile.h"

int sm_pidfile_open(const char *path, char *err, size_t errlen)
{
	char buf[32];
	struct stat st;
	ssize_t got;
	int fd, n;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "PidFile %s: %s", path,
		    errno == ELOOP ? "is a symbolic link" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
		snprintf(err, errlen, "PidFile %s: not a regular file with one link owned by uid %lu: "
		    "remove it", path, (unsigned long)geteuid());
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		got = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[got > 0 ? got : 0] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		snprintf(err, errlen, "PidFile %s: locked by a running stripe-milter (pid %s)", path,
		    buf[0] ? buf : "unknown");
		goto fail;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		snprintf(err, errlen, "PidFile %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

void sm_pidfile_close(int fd, const char *path)
{
	if (fd < 0)
		return;
	if (path)
		(void)unlink(path);
	close(fd);
}
