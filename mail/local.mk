# mail/local.mk - mail formats with no daemon knowledge: RFC 5322 addresses, RFC 8601
# Authentication-Results, RFC 2047 free text and folding (mail/mail.h is the whole interface).
noinst_LIBRARIES += mail/libmail.a
mail_libmail_a_SOURCES = mail/mail.h mail/mail_addr.c mail/mail_authres.c mail/mail_text.c
