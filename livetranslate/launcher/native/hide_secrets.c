/* Keeps secrets off the command line that `ps` shows.
 *
 * tritonserver takes its keys only as arguments (--grpc-restricted-protocol=...:header=KEY),
 * and /proc/PID/cmdline is readable by every local user. The launcher passes a placeholder
 * instead, @LT_SECRET_<NAME>@, and the value in the environment variable LT_SECRET_<NAME>
 * (readable only by the process owner). Preloaded into tritonserver, this constructor runs
 * before main(): it points each argument that holds a placeholder at a new string with the
 * value put in, so Triton parses the real key while /proc/PID/cmdline keeps the placeholder.
 * It then removes the secrets and LD_PRELOAD from the environment, so the model processes
 * Triton starts inherit neither.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#define PREFIX "LT_SECRET_"

extern char **environ;

static char *substitute(const char *arg) {
    const char *open = strstr(arg, "@" PREFIX);
    if (!open) return NULL;
    const char *name = open + 1;
    const char *close = strchr(name, '@');
    if (!close) return NULL;
    size_t name_len = (size_t)(close - name);
    char *var = strndup(name, name_len);
    if (!var) return NULL;
    const char *value = getenv(var);
    free(var);
    if (!value) return NULL;  /* left as it is: Triton then sees the placeholder, never a key */
    size_t head = (size_t)(open - arg), value_len = strlen(value), tail = strlen(close + 1);
    char *out = malloc(head + value_len + tail + 1);
    if (!out) return NULL;
    memcpy(out, arg, head);
    memcpy(out + head, value, value_len);
    memcpy(out + head + value_len, close + 1, tail + 1);
    return out;
}

__attribute__((constructor)) static void hide_secrets(int argc, char **argv, char **envp) {
    (void)envp;
    for (int i = 1; i < argc; i++) {
        char *replaced = substitute(argv[i]);
        if (replaced) argv[i] = replaced;
    }
    for (;;) {  /* unsetenv shifts environ: start over after each removal */
        int removed = 0;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, PREFIX, strlen(PREFIX)) == 0) {
                const char *eq = strchr(*e, '=');
                char *name = strndup(*e, eq ? (size_t)(eq - *e) : strlen(*e));
                if (name) { unsetenv(name); free(name); removed = 1; }
                break;
            }
        }
        if (!removed) break;
    }
    unsetenv("LD_PRELOAD");
}
