/*
 * notify-tool - raw notify-socket helper for the tests, no libsystemd:
 *   notify-tool listen SOCKET      print each datagram received on SOCKET
 *                                  (path or @abstract), one line each
 *                                  ("|" for newlines), until killed
 *   notify-tool send TEXT          send TEXT ("\n" escapes allowed) to
 *                                  $NOTIFY_SOCKET
 *   notify-tool garbage            send malformed datagrams to $NOTIFY_SOCKET
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static socklen_t make_address(const char *name, struct sockaddr_un *addr)
{
	size_t len = strlen(name);
	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	if (len == 0 || len >= sizeof addr->sun_path) {
		fprintf(stderr, "notify-tool: bad socket name\n");
		exit(2);
	}
	memcpy(addr->sun_path, name, len);
	if (name[0] == '@') {
		addr->sun_path[0] = '\0';
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

static int send_raw(const void *data, size_t size)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr;
	if (name == NULL) {
		fprintf(stderr, "notify-tool: NOTIFY_SOCKET is not set\n");
		exit(2);
	}
	socklen_t len = make_address(name, &addr);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t n = sendto(fd, data, size, MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
	close(fd);
	return n == (ssize_t)size ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "listen") == 0) {
		struct sockaddr_un addr;
		socklen_t len = make_address(argv[2], &addr);
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (argv[2][0] != '@') {
			unlink(argv[2]);
		}
		if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
			perror("notify-tool: bind");
			return 1;
		}
		setvbuf(stdout, NULL, _IOLBF, 0);
		printf("listening\n");
		for (;;) {
			char buf[8192];
			ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
			if (n < 0) {
				continue;
			}
			for (ssize_t i = 0; i < n; ++i) {
				if (buf[i] == '\n') {
					buf[i] = '|';
				}
			}
			buf[n] = '\0';
			printf("%s\n", buf);
		}
	}
	if (argc == 3 && strcmp(argv[1], "send") == 0) {
		char *text = strdup(argv[2]);
		char *out = text;
		for (const char *in = argv[2]; *in != '\0'; ++in) {
			if (in[0] == '\\' && in[1] == 'n') {
				*out++ = '\n';
				++in;
			} else {
				*out++ = *in;
			}
		}
		return send_raw(text, (size_t)(out - text));
	}
	if (argc == 2 && strcmp(argv[1], "garbage") == 0) {
		static char big[70000];
		static const char binary[] = {'\0', '\1', '\377', 'R', 'E', 'A', 'D', 'Y', '\0', '=', '1', '\n'};
		int failed = 0;
		memset(big, 'A', sizeof big);
		failed |= send_raw("", 0);
		failed |= send_raw("\n\n\n", 3);
		failed |= send_raw("=1\nREADY\nWATCHDOG\n=\n", 20);
		failed |= send_raw(binary, sizeof binary);
		failed |= send_raw("READY=1\0garbage", 15) & 0;
		failed |= send_raw(big, 5000);
		failed |= send_raw(big, sizeof big) & 0; /* may be refused: too big */
		failed |= send_raw("WATCHDOG=triggerX\nSTOPPING=0\nREADY=2\nSTATUS=\001\002", 46);
		return failed;
	}
	fprintf(stderr, "usage: notify-tool listen SOCKET | send TEXT | garbage\n");
	return 2;
}
