/*
 * test_secret.c - the one secret reader (common/sm_secret.c) and the pid file
 * (common/sm_pidfile.c): every rule of each, with the message that names the fix.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sm_pidfile.h"
#include "common/sm_secret.h"
#include "tests/harness/th.h"

static char dir[256];

/* Writes len bytes of text to dir/name with mode; returns the path (static). */
static const char *put(const char *name, const char *text, size_t len, mode_t mode)
{
	static char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}
#define PUT(name, text, mode) put(name, text, strlen(text), mode)

/* Reads path as who; returns "" on success (value in out) or the error. */
static const char *rd(const char *path, const struct sm_secret_who *who, char *out, size_t outlen)
{
	static char err[512];

	err[0] = '\0';
	if (sm_secret_read(path, who, out, outlen, err, sizeof(err)) != 0)
		ck_assert_msg(err[0] != '\0', "a failure without a message");
	else
		ck_assert_msg(err[0] == '\0', "success with a message: %s", err);
	return err;
}

static void has(const char *err, const char *want)
{
	ck_assert_msg(strstr(err, want) != NULL, "'%s' not in '%s'", want, err);
}

START_TEST(one_line_trimmed)
{
	char out[128];

	ck_assert_str_eq(rd(PUT("a", "  s3cret \n", 0600), NULL, out, sizeof(out)), "");
	ck_assert_str_eq(out, "s3cret");
	ck_assert_str_eq(rd(PUT("b", "s3cret", 0600), NULL, out, sizeof(out)), "");
	ck_assert_str_eq(out, "s3cret");
	ck_assert_str_eq(rd(PUT("c", "s3cret\r\n\n \n", 0600), NULL, out, sizeof(out)), "");
	ck_assert_str_eq(out, "s3cret");
	has(rd(PUT("d", "s3cret\nsecond\n", 0600), NULL, out, sizeof(out)), "more than one line");
	ck_assert_str_eq(out, "");
	has(rd(PUT("e", "\n", 0600), NULL, out, sizeof(out)), "is empty");
	has(rd(PUT("f", "", 0600), NULL, out, sizeof(out)), "is empty");
	has(rd(put("g", "ab\0cd\n", 6, 0600), NULL, out, sizeof(out)), "NUL byte");
	has(rd(PUT("h", "0123456789\n", 0600), NULL, out, 8), "too long");
}
END_TEST

START_TEST(size_cap)
{
	char big[SM_SECRET_MAX + 2], out[SM_SECRET_MAX + 1];

	memset(big, 'x', sizeof(big));
	ck_assert_str_eq(rd(put("max", big, SM_SECRET_MAX, 0600), NULL, out, sizeof(out)), "");
	ck_assert_uint_eq(strlen(out), SM_SECRET_MAX);
	has(rd(put("big", big, SM_SECRET_MAX + 1, 0600), NULL, out, sizeof(out)), "larger than 4096");
}
END_TEST

START_TEST(not_a_regular_file)
{
	char out[64], sl[512], fifo[512];
	const char *p = PUT("target", "s3cret\n", 0600);

	snprintf(sl, sizeof(sl), "%s/link", dir);
	unlink(sl);
	ck_assert_int_eq(symlink(p, sl), 0);
	has(rd(sl, NULL, out, sizeof(out)), "is a symbolic link");
	has(rd(dir, NULL, out, sizeof(out)), "not a regular file");
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	unlink(fifo);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	has(rd(fifo, NULL, out, sizeof(out)), "not a regular file");	/* and did not block */
	has(rd("/nonexistent/secret", NULL, out, sizeof(out)), "No such file");
}
END_TEST

START_TEST(mode_rules)
{
	struct sm_secret_who me = { geteuid(), getegid() }, other_group = { geteuid(), getegid() + 1 };
	char out[64];
	const char *p;

	p = PUT("m", "s3cret\n", 0644);
	has(rd(p, &me, out, sizeof(out)), "accessible by group or others (mode 0644)");
	has(rd(p, &me, out, sizeof(out)), "chmod 600");
	chmod(p, 0604);
	has(rd(p, &me, out, sizeof(out)), "accessible by group or others");
	chmod(p, 0660);
	has(rd(p, &me, out, sizeof(out)), "writable by its group");
	/* group-readable: only for the reading group (root:stripe-milter 0440) */
	chmod(p, 0440);
	ck_assert_str_eq(rd(p, &me, out, sizeof(out)), "");
	ck_assert_str_eq(out, "s3cret");
	has(rd(p, &other_group, out, sizeof(out)), "accessible by group or others (readable by group");
	chmod(p, 0400);
	ck_assert_str_eq(rd(p, &other_group, out, sizeof(out)), "");
}
END_TEST

START_TEST(owner_rules)
{
	struct sm_secret_who milter = { 65534, 65534 }, root = { 0, 0 };
	char out[64];
	const char *p;

	if (geteuid() != 0) {
		ck_assert_msg(1, "ownership cases need root");
		return;
	}
	p = PUT("o", "s3cret\n", 0400);
	/* root-owned: fine for root and for the milter user */
	ck_assert_str_eq(rd(p, &root, out, sizeof(out)), "");
	ck_assert_str_eq(rd(p, &milter, out, sizeof(out)), "");
	/* owned by the milter user, 0400: fine for it and for root starting it */
	ck_assert_int_eq(chown(p, 65534, 65534), 0);
	ck_assert_str_eq(rd(p, &milter, out, sizeof(out)), "");
	/* owned by someone else: refused */
	has(rd(p, &root, out, sizeof(out)), "owned by uid 65534");
	/* root:milter-group 0440 */
	ck_assert_int_eq(chown(p, 0, 65534), 0);
	chmod(p, 0440);
	ck_assert_str_eq(rd(p, &milter, out, sizeof(out)), "");
	has(rd(p, &root, out, sizeof(out)), "chgrp it to the daemon's group");
}
END_TEST

START_TEST(who_of_userid)
{
	struct sm_secret_who w;
	char err[256];

	ck_assert_int_eq(sm_secret_who_of(NULL, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(w.uid, geteuid());
	ck_assert_int_eq(sm_secret_who_of("nobody", &w, err, sizeof(err)), 0);
	ck_assert_int_eq(w.uid, 65534);
	ck_assert_int_eq(sm_secret_who_of("nobody:root", &w, err, sizeof(err)), 0);
	ck_assert_int_eq(w.gid, 0);
	ck_assert_int_eq(sm_secret_who_of("no-such-user-x", &w, err, sizeof(err)), -1);
	has(err, "no user 'no-such-user-x'");
	ck_assert_int_eq(sm_secret_who_of("nobody:no-such-group-x", &w, err, sizeof(err)), -1);
	has(err, "no group 'no-such-group-x'");
}
END_TEST

START_TEST(pidfile)
{
	char path[512], victim[512], err[256], buf[64], want[32];
	int fd, fd2;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/p.pid", dir);
	unlink(path);
	fd = sm_pidfile_open(path, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	ck_assert_str_eq(buf, want);
	/* a second daemon: refused while the first holds the lock, naming its pid */
	ck_assert_int_eq(sm_pidfile_open(path, err, sizeof(err)), -1);
	has(err, "locked by a running stripe-milter");
	buf[strcspn(buf, "\n")] = '\0';
	has(err, buf);
	sm_pidfile_close(fd, path);
	ck_assert_int_ne(access(path, F_OK), 0);
	/* a stale file (daemon died): reused, truncated */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_eq(write(fd, "99999999999\n", 12), 12);
	close(fd);
	fd2 = sm_pidfile_open(path, err, sizeof(err));
	ck_assert_msg(fd2 >= 0, "%s", err);
	n = pread(fd2, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	/* the whole file is our pid: nothing of the longer stale content is left */
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	ck_assert_str_eq(buf, want);
	sm_pidfile_close(fd2, path);
	/* a symbolic link planted at the path: refused, the target untouched */
	PUT("victim", "keep\n", 0644);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	ck_assert_int_eq(symlink(victim, path), 0);
	ck_assert_int_eq(sm_pidfile_open(path, err, sizeof(err)), -1);
	has(err, "symbolic link");
	unlink(path);
	/* a hard link to another file: refused */
	ck_assert_int_eq(link(victim, path), 0);
	ck_assert_int_eq(sm_pidfile_open(path, err, sizeof(err)), -1);
	has(err, "one link");
	unlink(path);
	fd = open(victim, O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(memcmp(buf, "keep\n", 5), 0);
	/* owned by someone else (a planted file in a shared folder): refused */
	if (geteuid() == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		close(fd);
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
		ck_assert_int_eq(sm_pidfile_open(path, err, sizeof(err)), -1);
		has(err, "owned by uid 0");
		unlink(path);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("secret");
	TCase *tc = tcase_create("secret");
	int rc;

	if (th_tmpdir(dir, sizeof(dir)) != 0)
		return 1;
	tcase_add_test(tc, one_line_trimmed);
	tcase_add_test(tc, size_cap);
	tcase_add_test(tc, not_a_regular_file);
	tcase_add_test(tc, mode_rules);
	tcase_add_test(tc, owner_rules);
	tcase_add_test(tc, who_of_userid);
	tcase_add_test(tc, pidfile);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_rmdir(dir);
	return rc;
}
