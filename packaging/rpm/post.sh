# %post ($1: 1 install, 2 upgrade): refresh the sudoers rule of an earlier
# 'edge-setup vnc' for this binary (checked by visudo); never create one.
if [ -e /etc/sudoers.d/edge-setup-vnc ]; then
    /usr/bin/edge-setup vnc refresh-sudoers ||
        echo "edge-setup: the sudoers rule was left as it was; run 'sudo /usr/bin/edge-setup vnc refresh-sudoers' again" >&2
fi
exit 0
