# Conventional entry points for sysadmins; the real work is in scripts/.
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: build install test
build:
	cargo build --release --bins
install:
	PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) scripts/install.sh
test:
	scripts/test.sh
