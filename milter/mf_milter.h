/*
 * mf_milter.h - the libmilter callbacks of stripe-milter.
 *
 * Interface:
 *	mf_milter_desc()	the filled struct smfiDesc to pass to smfi_register().
 *	mf_milter_in_progress()	how many messages are between MAIL FROM and their end.
 *
 * Per connection (smfi_setpriv) a struct mf_conn; per message a struct mf_msg that holds
 * a reference to the config snapshot it started with, the lookups it started and the
 * forged headers it saw. Callbacks may run on different threads for one connection;
 * nothing here is thread-local.
 */
#ifndef MF_MILTER_H
#define MF_MILTER_H

#include <libmilter/mfapi.h>

struct smfiDesc *mf_milter_desc(void);

/* Messages in progress: from MAIL FROM to end of message, abort or the connection's close
 * (any thread may call it; a stop waits for it to reach 0). */
long mf_milter_in_progress(void);

#endif
