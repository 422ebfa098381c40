"""Dovecot 2.4 setting and section names that the course may show in ``dovecot24`` blocks.

The machines that run the tests have Debian 12's Dovecot 2.3, whose ``doveconf`` rejects 2.4
names, so 2.4 blocks are checked against this list instead. Every name is taken from:

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

SECTIONS = frozenset({
    "service",
    "inet_listener",
    "unix_listener",
    "passdb",
    "userdb",
    "protocol",
    "namespace",
})
