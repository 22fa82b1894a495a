/* Floor for init timing: connects to AWS_LAMBDA_RUNTIME_API and asks for the next event, nothing else. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!api) return 2;
    char host[64]; strncpy(host, api, sizeof host - 1); host[63] = 0;
    char *colon = strchr(host, ':'); if (!colon) return 2; *colon = 0;
    struct sockaddr_in addr = {0}; addr.sin_family = AF_INET; addr.sin_port = htons(atoi(colon + 1));
    inet_pton(AF_INET, host, &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return 1;
    char request[256];
    int n = snprintf(request, sizeof request, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n", api);
    write(fd, request, n);
    char buffer[256]; while (read(fd, buffer, sizeof buffer) > 0) {}
    return 0;
}
