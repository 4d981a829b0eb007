# common/local.mk - small pieces shared by stripe/, cache/ and milter/.
noinst_LIBRARIES += common/libsmcommon.a
common_libsmcommon_a_SOURCES = common/sm_log.c common/sm_log.h common/sm_util.c common/sm_util.h common/sm_clock.c \
	common/sm_secret.c common/sm_secret.h common/sm_pidfile.c common/sm_pidfile.h \
	common/sm_httpd.c common/sm_httpd.h
