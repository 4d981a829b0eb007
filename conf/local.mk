# conf/local.mk - sample config, MTA snippets, systemd unit, rule examples, man pages.
