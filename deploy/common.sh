# shellcheck shell=bash
# Helpers shared by deploy/stack.sh, deploy/postgres.sh and deploy/with-stack.sh
# (sourced, not run). Each script defines its own log() and die().

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# port_holder PORT: describe the process listening on PORT ("pid 123: java ...
# -Dkafka.logs.dir=/x/.stack/logs ..."), as far as this user may see it; empty
# when unknown. Shown when a port is taken, so the user knows what to stop.
port_holder() {
    local pid args
    command -v ss >/dev/null 2>&1 || return 0
    pid="$(ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)"
    [[ -n $pid ]] || return 0
    args="$(ps -p "$pid" -o args= 2>/dev/null | cut -c1-300)"
    printf 'pid %s: %s\n' "$pid" "$args"
}

# stack_of_holder DESCRIPTION: the stack dir of a service started by these
# scripts, read from its command line (Kafka names its logs/ folder, S3Proxy
# its run/ folder, PostgreSQL its data folder, whose parent records the stack
# dir in stack-dir); empty otherwise.
stack_of_holder() {
    local text="$1"
    if [[ $text =~ -Dkafka\.logs\.dir=([^ ]+)/logs ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    elif [[ $text =~ --properties\ ([^ ]+)/run/s3proxy\.properties ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    elif [[ $text =~ -D\ ([^ ]+)/data ]]; then
        if [[ -r ${BASH_REMATCH[1]}/stack-dir ]]; then
            cat "${BASH_REMATCH[1]}/stack-dir"
        elif [[ ${BASH_REMATCH[1]} == */pg ]]; then
            printf '%s\n' "${BASH_REMATCH[1]%/pg}"
        fi
    fi
}

# port_taken_message PORT SERVICE VARIABLE: why PORT cannot be used, and the
# three ways out (use that stack, stop it, or pick another port).
port_taken_message() {
    local port="$1" service="$2" variable="$3" holder stack shown
    holder="$(port_holder "$port")"
    stack="$(stack_of_holder "$holder")"
    shown="$holder"
    ((${#shown} <= 100)) || shown="${shown:0:100}..."
    printf 'port %s is in use by a process this stack did not start%s.\n' \
        "$port" "${shown:+ ($shown)}"
    if [[ -n $stack ]]; then
        printf '  It is the %s of the stack in %s: to use that stack, run with MEDIAFLOW_STACK_DIR=%q;\n' \
            "$service" "$stack" "$stack"
        printf '  to stop it: MEDIAFLOW_STACK_DIR=%q make stack-down.\n' "$stack"
    else
        printf '  Stop it, or point MEDIAFLOW_STACK_DIR at the stack it belongs to.\n'
    fi
    printf '  Or run this stack on another port: %s=<port>.\n' "$variable"
}
