# bash completion for storagectl, the command-line client of storaged.
# Pool, volume and job names come from the running daemon (`... --name`);
# a verb's options come from its own --help, so they never drift.

_storagectl_verbs="pool-list pool-info pool-dumpxml pool-define pool-create pool-build
pool-start pool-stop pool-delete pool-undefine pool-refresh pool-autostart pool-add-pv
pool-remove-pv vol-list vol-info vol-path vol-dumpxml vol-create vol-create-xml vol-delete
vol-resize vol-wipe resolve-disk pool-import pool-import-libvirt domain-resolve job-list job-cancel monitor
version pool-thin-create vol-snapshot vol-revert vol-clone vol-rename vol-activate vol-deactivate
vol-upload vol-download"

_storagectl()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmd=${COMP_WORDS[0]} verb="" i
    local -a bus=() args=()
    COMPREPLY=()

    # Find --bus, the verb, and the positional arguments given so far.
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --bus) bus=(--bus "${COMP_WORDS[i+1]}"); ((i++)) ;;
            --count) ((i++)) ;;
            -*) ;;
            *) if [[ -z $verb ]]; then verb=${COMP_WORDS[i]}; else args+=("${COMP_WORDS[i]}"); fi ;;
        esac
    done

    case $prev in
        --bus) COMPREPLY=($(compgen -W "system session" -- "$cur")); return ;;
        --count) return ;;
    esac
    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$_storagectl_verbs --bus --help" -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        local opts
        opts=$("$cmd" "$verb" --help 2>/dev/null | grep -o -- '--[a-z-]*' | sort -u)
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    local n=${#args[@]} words=""
    case $verb:$n in
        pool-define:0 | pool-create:0 | resolve-disk:0 | pool-add-pv:1 | vol-create-xml:1 | \
        vol-upload:2 | vol-download:2 | pool-import-libvirt:0 | domain-resolve:0)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        job-cancel:0)
            words=$("$cmd" "${bus[@]}" job-list --name 2>/dev/null) ;;
        pool-list:* | job-list:* | monitor:* | version:* | pool-define:* | pool-create:* | \
        pool-import:* | pool-import-libvirt:* | domain-resolve:*)
            ;;
        pool-*:0 | vol-*:0)
            words=$("$cmd" "${bus[@]}" pool-list --name 2>/dev/null) ;;
        vol-info:1 | vol-path:1 | vol-dumpxml:1 | vol-delete:1 | vol-resize:1 | vol-wipe:1 | \
        vol-snapshot:1 | vol-revert:1 | vol-clone:1 | vol-rename:1 | vol-activate:1 | \
        vol-deactivate:1 | vol-upload:1 | vol-download:1)
            words=$("$cmd" "${bus[@]}" vol-list "${args[0]}" --name 2>/dev/null) ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _storagectl storagectl
