# %postun ($1: 0 erase, 1 upgrade): on erase the sudoers rule of 'edge-setup vnc'
# goes once no edge-setup binary it names is installed any more; users'
# sessions, passwords and the display mappings stay.
rule=/etc/sudoers.d/edge-setup-vnc
if [ "$1" = 0 ] && [ -e "$rule" ]; then
    for exe in $(sed -n 's/^Defaults!\([^ ]*\) .*/\1/p' "$rule"); do
        [ -e "$exe" ] && exit 0
    done
    rm -f "$rule"
fi
exit 0
