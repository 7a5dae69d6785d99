/*
 * The gate of every application: `gate ADDRESS... -- PROGRAM ARGS...` waits
 * until every ADDRESS is on an interface of the network namespace it runs
 * in, then executes PROGRAM (searched in PATH, as Docker searches an
 * entrypoint) in its place.
 *
 * Docker may start an application by itself in a netns not yet plugged (a
 * restart policy after a power loss); the gate holds it until the server
 * has plugged it. A same-host replacement starts its new application
 * before the old one stops, behind this gate, so that Docker's start of the
 * container is not part of the address's gap; the address is plugged by the
 * server a moment after the old application exits.
 *
 * Route netlink's address groups are joined before the first look, so that
 * an address added between the look and the wait wakes the wait. SIGTERM
 * and SIGINT before the release end the gate at once (the container's stop
 * while it waits); after the exec the application has the default
 * dispositions back, as the kernel resets caught signals on exec.
 *
 * Built static (build.rs), so it runs in any image, libc or none.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ADDRESSES 4

struct address {
	int family;
	unsigned char bytes[16];
};

static void leave(int sig)
{
	_exit(128 + sig);
}

/* Whether every one of the n addresses is on an interface now. */
static int all_present(const struct address *want, int n)
{
	struct ifaddrs *list, *a;
	int i, found = 0;

	if (getifaddrs(&list) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		for (a = list; a; a = a->ifa_next) {
			const struct sockaddr *sa = a->ifa_addr;
			if (!sa || sa->sa_family != want[i].family)
				continue;
			if (sa->sa_family == AF_INET &&
			    !memcmp(&((const struct sockaddr_in *)sa)->sin_addr,
				    want[i].bytes, 4))
				break;
			if (sa->sa_family == AF_INET6 &&
			    !memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
				    want[i].bytes, 16))
				break;
		}
		if (a)
			found++;
	}
	freeifaddrs(list);
	return found == n;
}

/* Whether execvp would find an executable file for prog. */
static int runnable(const char *prog)
{
	const char *path = getenv("PATH"), *p;
	char full[4096];

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (snprintf(full, sizeof full, "%.*s/%s", (int)len,
			     len ? p : ".", prog) < (int)sizeof full &&
		    access(full, X_OK) == 0)
			return 1;
		if (!end)
			return 0;
		p = end;
	}
}

int main(int argc, char **argv)
{
	struct address want[MAX_ADDRESSES];
	struct sockaddr_nl groups = {.nl_family = AF_NETLINK,
				     .nl_groups = RTMGRP_IPV4_IFADDR |
						  RTMGRP_IPV6_IFADDR};
	struct sigaction sa = {.sa_handler = leave};
	char buf[8192];
	int n = 0, i, j, fd;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (n == MAX_ADDRESSES) {
			fprintf(stderr, "dockstack gate: more than %d addresses\n",
				MAX_ADDRESSES);
			return 125;
		}
		want[n].family = strchr(argv[i], ':') ? AF_INET6 : AF_INET;
		if (inet_pton(want[n].family, argv[i], want[n].bytes) != 1) {
			fprintf(stderr, "dockstack gate: %s is not an address\n",
				argv[i]);
			return 125;
		}
		n++;
	}
	if (i + 1 >= argc) {
		fprintf(stderr,
			"usage: gate ADDRESS... -- PROGRAM [ARGUMENT...]\n");
		return 125;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* A program that cannot run is told now, while the old application
	 * still serves, not once the address has moved. */
	if (!runnable(argv[i + 1])) {
		fprintf(stderr, "dockstack gate: cannot execute %s: not found\n",
			argv[i + 1]);
		return 127;
	}

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0 || bind(fd, (struct sockaddr *)&groups, sizeof groups)) {
		perror("dockstack gate: route netlink");
		return 125;
	}
	/* The server waits for this line (or the one above) before it stops
	 * the old application. */
	if (!all_present(want, n)) {
		fprintf(stderr, "dockstack gate: waiting for");
		for (j = 1; j < i; j++)
			fprintf(stderr, " %s", argv[j]);
		fprintf(stderr, "\n");
	}
	while (!all_present(want, n)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		/* A lost notification (a full socket) costs at most a second. */
		if (poll(&p, 1, 1000) > 0)
			while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
				;
	}
	close(fd);

	execvp(argv[i + 1], argv + i + 1);
	fprintf(stderr, "dockstack gate: cannot execute %s: %s\n", argv[i + 1],
		strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
