SUMMARY = "gatewatch: a small EDR agent for ARM IoT gateways"
DESCRIPTION = "One static, single-threaded agent that watches the gateway with \
               memory-budgeted modules, spools every event on disk and sends it over \
               TLS 1.3 to a gatewatch (Wazuh-compatible) manager whose CA it pins."
# The project's public address: replace it in a bbappend when you publish your fork.
HOMEPAGE = "https://gatewatch.example.org"
SECTION = "security"
CVE_PRODUCT = "gatewatch"
LICENSE = "Apache-2.0"
# The sources carry their licence in Cargo.toml (`license = "Apache-2.0"`), not in a file.
# nooelint: oelint.var.licenseremotefile
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

PV .= "+git"

# Where the sources come from: point SRC_URI's first entry at your clone (a bbappend), or
# build a working tree with externalsrc (see the layer's README).
SRC_URI = "git://git.example.org/gatewatch.git;protocol=https;branch=main \
           file://gatewatch.service \
           file://agent.toml \
           "
# Pin a release commit in local.conf or a bbappend: GATEWATCH_SRCREV = "<commit>".
GATEWATCH_SRCREV ??= "${AUTOREV}"
SRCREV = "${GATEWATCH_SRCREV}"

S = "${WORKDIR}/git"

# crate:// entries for every locked crate; regenerate with scripts/yocto-crates.sh.
require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates systemd

# The manager (`demo` feature, in the default features) is never part of a gateway image.
# Each module is a cargo feature: `gateway` selects all of them; list single modules instead to
# leave the others out of the binary.
PACKAGECONFIG ??= "gateway"
PACKAGECONFIG[gateway] = "--features gateway,,"
PACKAGECONFIG[command] = "--features command,,"
PACKAGECONFIG[fim] = "--features fim,,"
PACKAGECONFIG[generator] = "--features generator,,"
PACKAGECONFIG[inventory] = "--features inventory,,"
PACKAGECONFIG[logcollector] = "--features logcollector,,"
PACKAGECONFIG[sca] = "--features sca,,"
PACKAGECONFIG[containers] = "--features containers,,"
CARGO_BUILD_FLAGS:append = " --no-default-features ${PACKAGECONFIG_CONFARGS}"

do_install() {
    install -d ${D}${bindir}
    install -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/gatewatch ${D}${bindir}/gatewatch

    install -d ${D}${sysconfdir}/gatewatch
    install -m 0600 ${WORKDIR}/agent.toml ${D}${sysconfdir}/gatewatch/agent.toml

    # The shipped SCA policy, where the sca module looks by default (policies_dir).
    if ${@bb.utils.contains_any('PACKAGECONFIG', 'gateway sca', 'true', 'false', d)}; then
        install -d ${D}${sysconfdir}/gatewatch/sca
        install -m 0644 ${S}/etc/sca/*.yml ${D}${sysconfdir}/gatewatch/sca/
    fi

    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${WORKDIR}/gatewatch.service ${D}${systemd_system_unitdir}/gatewatch.service
    sed -i -e 's#@BINDIR@#${bindir}#g' -e 's#@SYSCONFDIR@#${sysconfdir}#g' \
        ${D}${systemd_system_unitdir}/gatewatch.service

    # Credentials, spool and module state. Keep /var/lib on the data partition so that the
    # agent's identity and unsent events survive a rootfs update.
    install -d -m 0700 ${D}${localstatedir}/lib/gatewatch
}

SYSTEMD_SERVICE:${PN} = "gatewatch.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

# The configuration is the operator's: a package update keeps a locally changed file.
CONFFILES:${PN} = "${sysconfdir}/gatewatch/agent.toml"
FILES:${PN} += "${localstatedir}/lib/gatewatch"
