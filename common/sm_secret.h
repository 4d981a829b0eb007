/*
 * sm_secret.h - the one reader of secret files (Stripe key, Redis password, any later secret).
 *
 * Interface:
 *	sm_secret_read(path, who, out, outlen, err, errlen) reads a one-line secret from path
 *	into out (NUL-terminated, surrounding blanks and the line end removed) and returns 0;
 *	-1 with err set otherwise. The file must be:
 *	  - a regular file reached without following a symbolic link at its last component
 *	    (O_NOFOLLOW; a FIFO or device is refused without blocking on it);
 *	  - owned by root or by the reading user (who->uid);
 *	  - not accessible by others at all; not writable or executable by its group; readable
 *	    by its group only when that group is the reading group (who->gid), so that
 *	    root:stripe-milter 0440 works for a daemon that re-reads it after becoming
 *	    stripe-milter, and root:adm 0640 does not;
 *	  - at most SM_SECRET_MAX bytes, one line: an optional final "\n" or "\r\n" and blank
 *	    lines after it are accepted; a second non-blank line, a NUL byte or an empty
 *	    secret is refused.
 *	who == NULL means the process's effective ids.
 *	sm_secret_who_of(spec, &who, err, errlen) fills who from "user[:group]" (a UserID), or
 *	from the effective ids when spec is NULL.
 *
 * Diagnostics: err names the file and the rule broken with the fix (chmod/chown), never the
 *	content. The buffers holding the content are wiped before return.
 *
 * Known limits: the rules look at the file itself, not at the folders above it; ownership
 *	of the folder is the administrator's (the Debian package makes it root:stripe-milter
 *	0750). Readability by who is not checked here (the caller reads as who: see
 *	stripe-milter -n).
 */
#ifndef SM_SECRET_H
#define SM_SECRET_H

#include <stddef.h>
#include <sys/types.h>

#define SM_SECRET_MAX 4096

struct sm_secret_who {
	uid_t uid;	/* the user that reads (and re-reads) the file */
	gid_t gid;	/* its group: the only group allowed to read */
};

int sm_secret_who_of(const char *spec, struct sm_secret_who *who, char *err, size_t errlen);
int sm_secret_read(const char *path, const struct sm_secret_who *who, char *out, size_t outlen,
    char *err, size_t errlen);

#endif
