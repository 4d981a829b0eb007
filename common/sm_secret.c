/*
 * sm_secret.c - the one reader of secret files. See sm_secret.h for the rules.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sm_secret.h"
#include "common/sm_util.h"

int sm_secret_who_of(const char *spec, struct sm_secret_who *who, char *err, size_t errlen)
{
	char user[128], *grp;
	struct passwd *pw;
	struct group *gr;

	if (spec == NULL || *spec == '\0') {
		who->uid = geteuid();
		who->gid = getegid();
		return 0;
	}
	sm_strlcpy(user, spec, sizeof(user));
	grp = strchr(user, ':');
	if (grp)
		*grp++ = '\0';
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errlen, "UserID: no user '%s' (create it, e.g. adduser --system --group %s)",
		    user, user);
		return -1;
	}
	who->uid = pw->pw_uid;
	who->gid = pw->pw_gid;
	if (grp) {
		gr = getgrnam(grp);
		if (gr == NULL) {
			snprintf(err, errlen, "UserID: no group '%s'", grp);
			return -1;
		}
		who->gid = gr->gr_gid;
	}
	return 0;
}

/* Name of a group id for messages. */
static void sm_secret_group_name(gid_t gid, char *out, size_t len)
{
	struct group *gr = getgrgid(gid);

	if (gr)
		sm_strlcpy(out, gr->gr_name, len);
	else
		snprintf(out, len, "%lu", (unsigned long)gid);
}

/* The ownership and mode rules on an open file's status; 0 or -1 with err. */
static int sm_secret_check(const char *path, const struct stat *st, const struct sm_secret_who *who,
    char *err, size_t errlen)
{
	unsigned mode = (unsigned)(st->st_mode & 07777);
	char gname[64];

	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -1;
	}
	if (st->st_uid != 0 && st->st_uid != who->uid) {
		snprintf(err, errlen, "%s is owned by uid %lu: it must belong to root or to the user "
		    "that reads it (uid %lu)", path, (unsigned long)st->st_uid, (unsigned long)who->uid);
		return -1;
	}
	if (mode & S_IRWXO) {
		snprintf(err, errlen, "%s is accessible by group or others (mode %04o): chmod 600 it, "
		    "or 440 with the daemon's group", path, mode);
		return -1;
	}
	if (mode & (S_IWGRP | S_IXGRP)) {
		snprintf(err, errlen, "%s is writable by its group (mode %04o): chmod g-wx it", path, mode);
		return -1;
	}
	if ((mode & S_IRGRP) && st->st_gid != who->gid) {
		sm_secret_group_name(st->st_gid, gname, sizeof(gname));
		snprintf(err, errlen, "%s is accessible by group or others (readable by group %s, mode "
		    "%04o): chmod 600 it, or chgrp it to the daemon's group", path, gname, mode);
		return -1;
	}
	if (st->st_size > SM_SECRET_MAX) {
		snprintf(err, errlen, "%s is larger than %d bytes: not a secret file", path, SM_SECRET_MAX);
		return -1;
	}
	return 0;
}

/* Cuts buf (n bytes) to its one line, trimmed; the start of it, or NULL with err. */
static char *sm_secret_line(const char *path, char *buf, size_t n, char *err, size_t errlen)
{
	char *s, *end, *rest;

	if (memchr(buf, '\0', n) != NULL) {
		snprintf(err, errlen, "%s contains a NUL byte", path);
		return NULL;
	}
	buf[n] = '\0';
	end = buf + strcspn(buf, "\r\n");
	rest = end;
	rest += strspn(rest, " \t\r\n");
	if (*rest != '\0') {
		snprintf(err, errlen, "%s has more than one line: put the secret alone on the first", path);
		return NULL;
	}
	*end = '\0';
	for (s = buf; *s == ' ' || *s == '\t'; s++)
		;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (*s == '\0') {
		snprintf(err, errlen, "%s is empty", path);
		return NULL;
	}
	return s;
}

int sm_secret_read(const char *path, const struct sm_secret_who *who, char *out, size_t outlen,
    char *err, size_t errlen)
{
	struct sm_secret_who self;
	char buf[SM_SECRET_MAX + 2], *s;
	struct stat st;
	size_t n = 0;
	ssize_t got;
	int fd = -1, rc = -1;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (who == NULL) {
		sm_secret_who_of(NULL, &self, err, errlen);
		who = &self;
	}
	fd = open(path, O_RDONLY | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			snprintf(err, errlen, "%s is a symbolic link: point the option at the file itself", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (sm_secret_check(path, &st, who, err, errlen) != 0)
		goto out;
	/* Read to the end (the file may have grown since fstat): at most SM_SECRET_MAX + 1. */
	while (n < SM_SECRET_MAX + 1) {
		got = read(fd, buf + n, SM_SECRET_MAX + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (n > SM_SECRET_MAX) {
		snprintf(err, errlen, "%s is larger than %d bytes: not a secret file", path, SM_SECRET_MAX);
		goto out;
	}
	if ((s = sm_secret_line(path, buf, n, err, errlen)) == NULL)
		goto out;
	if (strlen(s) >= outlen) {
		snprintf(err, errlen, "%s: the secret is too long (at most %zu characters)", path, outlen - 1);
		goto out;
	}
	sm_strlcpy(out, s, outlen);
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rc;
}
