# The two commands of the README:
#   make run    installs what is missing, builds, starts apps/hello.lua
#   make test   installs what is missing, builds, runs every test
# and what they are made of.

BUILD ?= build
SAN_BUILD ?= build-sanitize
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
APP ?= apps/hello.lua
CTEST_FLAGS ?= --output-on-failure -j $(JOBS)
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps build run test sanitize test-sanitize bench clean install deb

all: build

deps:
	@scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/luacluster $(APP)

test: build
	cd $(BUILD) && ctest $(CTEST_FLAGS)

# The same suite with AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLC_SANITIZE=ON >/dev/null
	cmake --build $(SAN_BUILD) -j $(JOBS)

test-sanitize: sanitize
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

# The binary, libluacluster.a, luacluster.h, luacluster.pc, the man page and
# the systemd unit under $(PREFIX) (inside $(DESTDIR) when set).
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# A Debian package of the same files under /usr, in $(BUILD)/.
deb: build
	cd $(BUILD) && cpack -G DEB

bench: build
	bench/run

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
