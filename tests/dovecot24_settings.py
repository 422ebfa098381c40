"""Dovecot 2.4 setting and section names that the course may show in ``dovecot24`` blocks, and
the values of its boolean and enumerated settings.

The machines that run the tests have Debian 12's Dovecot 2.3, whose ``doveconf`` rejects 2.4
names, so 2.4 blocks are checked against these lists instead. Every name is taken from:

- Dovecot 2.4 settings reference: https://doc.dovecot.org/latest/core/summaries/settings.html
- Upgrading Dovecot CE from 2.3 to 2.4, "Converted Settings" and "Changed Settings":
  https://doc.dovecot.org/2.4.0/installation/upgrade/2.3-to-2.4.html

Add a name only with a look at those pages; the 2.3 names that 2.4 renamed (``ssl_cert``,
``ssl_key``, ``disable_plaintext_auth``, ...) must not be added.
"""

SETTINGS = frozenset({
    "dovecot_config_version",
    "dovecot_storage_version",
    "protocols",
    "listen",
    "ssl",
    "ssl_server_cert_file",
    "ssl_server_key_file",
    "ssl_server_ca_file",
    "ssl_server_dh_file",
    "ssl_server_prefer_ciphers",
    "ssl_server_request_client_cert",
    "ssl_client_ca_file",
    "ssl_client_ca_dir",
    "ssl_min_protocol",
    "ssl_cipher_list",
    "auth_allow_cleartext",
    "auth_mechanisms",
    "login_trusted_networks",
    "mail_driver",
    "mail_path",
    "mail_home",
    "passdb_driver",
    "userdb_driver",
    "passwd_file_path",
    "port",
    "mode",
    "user",
    "group",
})

# The values that the boolean and enumerated settings above accept. A setting not listed here
# (a path, a port, a list, a version) is checked by name only. Taken from Dovecot 2.4.1, the
# version Debian 13 ships, at https://github.com/dovecot/core/tree/2.4.1:
#
# - src/lib-ssl-iostream/ssl-settings.c: DEF(ENUM, ssl) with "yes:no:required",
#   DEF(ENUM, ssl_server_prefer_ciphers) with "client:server" (the first value is the default),
#   DEF(BOOL, ssl_server_request_client_cert);
# - src/login-common/login-settings.c: DEF(BOOL, auth_allow_cleartext), DEF(ENUM, ssl);
# - src/master/master-settings.c: inside an inet_listener section, ssl is the listener's own
#   DEF(BOOL, ssl) (inet_listener_ssl): yes or no, never "required";
# - src/lib/str-parse.c, str_parse_get_bool(): a boolean is "yes" or "no" ("use yes or no";
#   it also takes "y" and "1", which the course does not write).
#
# The settings reference (https://doc.dovecot.org/latest/core/summaries/settings.html) gives the
# same values (values_enum) and defaults. Debian 13's `doveconf -d` (Dovecot 2.4.1) shows the
# defaults: ssl = yes, ssl_server_prefer_ciphers = client, ssl_server_request_client_cert = no,
# auth_allow_cleartext = no, and ssl = yes in the imaps listener.
#
# Add a value only with a look at those sources. Dovecot 2.3's yes/no for
# ssl_prefer_server_ciphers must not be added to ssl_server_prefer_ciphers: 2.4 refuses
# "ssl_server_prefer_ciphers = yes" with "Invalid value: yes".

BOOLEAN = frozenset({"yes", "no"})

VALUES = {
    "ssl": frozenset({"yes", "no", "required"}),
    "ssl_server_prefer_ciphers": frozenset({"client", "server"}),
    "ssl_server_request_client_cert": BOOLEAN,
    "auth_allow_cleartext": BOOLEAN,
}

# Settings whose values depend on the section they are in: (section type, setting) -> values.
SECTION_VALUES = {
    ("inet_listener", "ssl"): BOOLEAN,
}


def allowed_values(sections: tuple[str, ...], name: str) -> frozenset[str] | None:
    """The values a setting accepts where it stands (``sections``: the section types around it,
    outermost first), or None when its values are not checked."""
    if sections and (sections[-1], name) in SECTION_VALUES:
        return SECTION_VALUES[(sections[-1], name)]
    return VALUES.get(name)


SECTIONS = frozenset({
    "service",
    "inet_listener",
    "unix_listener",
    "passdb",
    "userdb",
    "protocol",
    "namespace",
})
