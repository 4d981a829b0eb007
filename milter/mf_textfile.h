/*
 * mf_textfile.h - MetricsFile: the metrics written to a file for the node exporter's
 * textfile collector (how and why: mf_textfile.c).
 *
 * Interface:
 *	mf_textfile_start(path, interval_s)	starts the writer thread (it writes at once, then
 *		every interval); 0 when path is NULL. -1 (logged) when the thread cannot start.
 *		A write that fails is logged, not fatal.
 *	mf_textfile_stop()	stops it; the last file stays (its age tells the daemon stopped).
 */
#ifndef MF_TEXTFILE_H
#define MF_TEXTFILE_H

int mf_textfile_start(const char *path, long interval_s);
void mf_textfile_stop(void);

#endif
