# storaged: every target installs what it needs on a fresh Debian 12 machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PREFIX ?= /usr/local
DESTDIR ?=
SYSTEMD_UNIT_DIR ?= /lib/systemd/system
SYSUSERS_DIR ?= /usr/lib/sysusers.d
DBUS_DIR ?= /usr/share/dbus-1
POLKIT_ACTIONS_DIR ?= /usr/share/polkit-1/actions
MANDIR ?= $(PREFIX)/share/man
MAN_OUT ?= build/man
PIP_ARGS ?=

APT_PACKAGES := lvm2 dbus systemd e2fsprogs libsystemd-dev pkg-config gcc python3-dev python3-venv util-linux \
  libvirt-clients libxml2-utils scdoc man-db
# The Cockpit page's tests: a real cockpit-ws and a real headless browser.
BROWSER_TEST_APT_PACKAGES := cockpit-ws cockpit-bridge chromium chromium-driver
VENV_STAMP := $(VENV)/.installed
# The Cockpit page as installed: its own files plus the part of PatternFly it uses.
# `make install COCKPIT=no` leaves it out (a machine without npm and no network).
COCKPIT ?= yes
COCKPIT_DIR ?= /usr/share/cockpit/storaged
COCKPIT_BUILD := build/share/cockpit/storaged
COCKPIT_STAMP := build/share/.cockpit-built
COCKPIT_NPM := build/npm
COCKPIT_SOURCES := $(wildcard cockpit/*.html cockpit/*.js cockpit/*.css cockpit/*.json cockpit/*.py)

.PHONY: all deps test-deps venv cockpit run test system-test bench man install deb clean

all: venv

# apt runs only when one of the packages is missing.
apt_ensure = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) $$missing; \
	fi

# Debian packages the daemon and the tests need.
deps:
	@$(call apt_ensure,$(APT_PACKAGES))

test-deps: deps
	@$(call apt_ensure,$(BROWSER_TEST_APT_PACKAGES),--no-install-recommends)

# npm runs here, at build time only; the page fetches nothing at run time.
# Any node with npm will do (Debian's nodejs and npm are installed when there is none).
$(COCKPIT_NPM)/.installed: cockpit/package.json
	@command -v npm >/dev/null || { $(call apt_ensure,nodejs npm,--no-install-recommends); }
	mkdir -p $(COCKPIT_NPM)
	cp cockpit/package.json $(COCKPIT_NPM)/package.json
	npm install --prefix $(COCKPIT_NPM) --no-package-lock --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

$(COCKPIT_STAMP): $(COCKPIT_SOURCES) $(COCKPIT_NPM)/.installed
	$(PYTHON) cockpit/build.py $(COCKPIT_NPM)/node_modules/@patternfly/patternfly $(COCKPIT_BUILD)
	touch $@

cockpit: $(COCKPIT_STAMP)

$(VENV_STAMP): pyproject.toml | deps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[systemd,test]'
	touch $@

venv: deps $(VENV_STAMP)

# The daemon on its embedded default: its own bus, state under .run/, the default pool.
run: venv
	$(VENV)/bin/storaged --embedded .run

test: venv test-deps cockpit
	$(VENV)/bin/python -m pytest -q

system-test:
	bash tests/system/run.sh

bench: venv
	$(VENV)/bin/python bench/run.py

# Debian's own python3 maps --prefix=/usr to /usr/local (its posix_local scheme)
# and would put PREFIX=/usr/local under /usr/local/local; ask for /usr there.
PIP_PREFIX = $(shell $(PYTHON) -c 'import sysconfig; print("/usr" if sysconfig.get_preferred_scheme("prefix") == "posix_local" and "$(PREFIX)" == "/usr/local" else "$(PREFIX)")')

# Man pages: scdoc sources in man/, built at install (scdoc is a Debian package).
MAN_SOURCES := $(wildcard man/*.scd)
man:
	@command -v scdoc >/dev/null || { echo "man pages need scdoc: apt-get install scdoc" >&2; exit 1; }
	mkdir -p $(MAN_OUT)
	for src in $(MAN_SOURCES); do page=$$(basename $$src .scd); \
	  scdoc < $$src > $(MAN_OUT)/$$page || exit 1; done

install: man $(if $(filter yes,$(COCKPIT)),cockpit)
	for src in $(MAN_SOURCES); do page=$$(basename $$src .scd); \
	  install -D -m 0644 $(MAN_OUT)/$$page $(DESTDIR)$(MANDIR)/man$${page##*.}/$$page || exit 1; done
	$(PYTHON) -m pip install --root=$(DESTDIR)/ --prefix=$(PIP_PREFIX) --no-deps --no-build-isolation \
	  --break-system-packages --ignore-installed $(PIP_ARGS) .
	install -D -m 0644 dbus/org.storaged.Storaged1.conf $(DESTDIR)$(DBUS_DIR)/system.d/org.storaged.Storaged1.conf
	install -D -m 0644 dbus/org.storaged.Storaged1.service $(DESTDIR)$(DBUS_DIR)/system-services/org.storaged.Storaged1.service
	install -D -m 0644 dbus/org.storaged.Storaged1.policy $(DESTDIR)$(POLKIT_ACTIONS_DIR)/org.storaged.Storaged1.policy
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	for unit in storaged storaged-network-pools; do \
	  sed 's|@BINDIR@|$(PREFIX)/bin|g' systemd/$$unit.service.in > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/$$unit.service && \
	  chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/$$unit.service || exit 1; done
	install -D -m 0644 systemd/storaged.sysusers $(DESTDIR)$(SYSUSERS_DIR)/storaged.conf
	if [ -z "$(DESTDIR)" ] || [ "$(DESTDIR)" = / ]; then \
	  systemd-sysusers $(SYSUSERS_DIR)/storaged.conf || echo "warning: could not create the storaged group"; fi
	install -D -m 0644 completion/storagectl.bash $(DESTDIR)/usr/share/bash-completion/completions/storagectl
	if [ "$(COCKPIT)" = yes ]; then \
	  rm -rf $(DESTDIR)$(COCKPIT_DIR) && install -d $(DESTDIR)$(COCKPIT_DIR) && \
	  cp -r --no-preserve=ownership $(COCKPIT_BUILD)/. $(DESTDIR)$(COCKPIT_DIR)/; fi

# A Debian package from the working tree (tracked and untracked files, not ignored ones):
# dist/storaged_VERSION_all.deb, checked by lintian. DEB_VERSION=0.1.0~lab1 builds it
# under another version (the VM lab's upgrade test).
DEB_VERSION ?=
DEB_BUILD_PACKAGES := debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools \
  scdoc lintian fakeroot dpkg-dev
deb:
	@$(MAKE) -s deps APT_PACKAGES="$(DEB_BUILD_PACKAGES)"
	rm -rf build/deb && mkdir -p build/deb/src dist
	git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C build/deb/src
	if [ -n "$(DEB_VERSION)" ]; then \
	  { printf 'storaged (%s) unstable; urgency=medium\n\n  * Build %s.\n\n -- %s  %s\n\n' \
	      "$(DEB_VERSION)" "$(DEB_VERSION)" "$$(sed -n 's/^ -- \(.*>\).*/\1/p;T;q' debian/changelog)" \
	      "$$(date -R)"; cat debian/changelog; } > build/deb/src/debian/changelog; fi
	# Debian's own python3, whatever else is first on PATH.
	cd build/deb/src && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b --no-sign >../build.log 2>&1 || { tail -40 ../build.log; exit 1; }
	mv build/deb/storaged_*_all.deb dist/
	PATH=/usr/sbin:/usr/bin:/sbin:/bin lintian --fail-on error dist/storaged_$$(cd build/deb/src && dpkg-parsechangelog -S Version)_all.deb
	@echo "built: $$(ls -t dist/storaged_*_all.deb | head -1)"

clean:
	rm -rf $(VENV) build dist *.egg-info .pybuild
