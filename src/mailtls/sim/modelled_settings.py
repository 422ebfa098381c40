"""Which Postfix parameters and Dovecot settings the simulated lab models, and which it accepts.

The simulated lab reads the lab's real configuration files. Each setting in them is one of:

- **modelled**: the simulation does what the real server does with it, whatever its value;
- **accepted**: any value is fine, because what it changes is nothing the lab can show (each
  with the reason, in English and Spanish);
- **fixed**: accepted only at the values listed, those the lab's own files set (and the
  default where the simulation behaves as the default does): the simulation works as the real
  server does with those values and with no other;
- anything else: not modelled. Such a setting stops the simulated host when it is set to
  anything but its default (:mod:`mailtls.sim.config` checks it; the defaults are the real
  binaries', in ``names/``).

This module is the data only. The site's page "What the simulated lab simplifies" is generated
from it (``docs/_ext/sim_settings.py``), so the page lists exactly what the simulation does.

Names: a Postfix parameter as in ``main.cf`` or a ``master.cf`` ``-o``. A Dovecot setting of the
top level by its name; one inside sections by the path of its sections, each ``TYPE NAME`` (or
``TYPE`` for an unnamed section), then the setting: ``service imap-login/inet_listener */port``
(``*`` and ``?`` match as in :mod:`fnmatch`). A value ``{host}`` is replaced by the host's name
(``mail.lab.test``) before comparing.

To model a setting: make the simulation obey it, then move its entry here to ``MODELLED`` (a
fixed or accepted entry loses its values and reasons), and add a test of the behaviour.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

MODELLED, ACCEPTED, FIXED = "modelled", "accepted", "fixed"


@dataclass(frozen=True)
class Category:
    """A group of settings on the page: ``key`` with its title in English and Spanish."""

    key: str
    en: str
    es: str


@dataclass(frozen=True)
class Setting:
    """One setting's status: ``server`` is ``postfix`` or ``dovecot``; ``how`` is MODELLED,
    ACCEPTED or FIXED; ``en``/``es`` say why it may be accepted (empty when modelled);
    ``values`` are the values a FIXED setting is accepted at."""

    server: str
    name: str
    category: str
    how: str
    en: str = ""
    es: str = ""
    values: tuple[str, ...] = ()

    def allows(self, value: str, host: str) -> bool:
        """Whether the simulation can run with ``value`` (compared with spaces normalised)."""
        if self.how != FIXED:
            return True
        return normalise(value) in {normalise(v.replace("{host}", host)) for v in self.values}


def normalise(value: str) -> str:
    """A value as Postfix and Dovecot compare it: words separated by single spaces (commas that
    separate list items count as spaces, as in both servers' lists)."""
    return " ".join(value.replace(",", " ").split())


CATEGORIES = (
    Category("identity", "Names and greetings", "Nombres y saludos"),
    Category("smtpd_tls", "TLS in Postfix's server (smtpd)", "TLS en el servidor de Postfix (smtpd)"),
    Category("smtpd_auth", "Authentication in Postfix (SASL)", "Autenticación en Postfix (SASL)"),
    Category("access", "Access and relaying", "Acceso y reenvío"),
    Category("routing", "Domains, mailboxes and routes", "Dominios, buzones y rutas"),
    Category("smtp_tls", "TLS in Postfix's client (smtp)", "TLS en el cliente de Postfix (smtp)"),
    Category("postfix_system", "Postfix on the machine: network, DNS, logs",
             "Postfix en la máquina: red, DNS, registros"),
    Category("dovecot_tls", "TLS in Dovecot", "TLS en Dovecot"),
    Category("dovecot_auth", "Logins in Dovecot", "Inicios de sesión en Dovecot"),
    Category("dovecot_listeners", "Dovecot's services and listeners", "Servicios y escuchas de Dovecot"),
    Category("dovecot_system", "Dovecot on the machine: mailboxes, logs, version",
             "Dovecot en la máquina: buzones, registros, versión"),
)

LAB_PATHS_EN = "the lab's own path, where the lab puts that file"
LAB_PATHS_ES = "la ruta del propio laboratorio, donde este pone ese archivo"


def _modelled(server: str, category: str, *names: str) -> list[Setting]:
    return [Setting(server, name, category, MODELLED) for name in names]


def _accepted(server: str, category: str, names: tuple[str, ...], en: str, es: str) -> list[Setting]:
    return [Setting(server, name, category, ACCEPTED, en, es) for name in names]


def _fixed(server: str, category: str, name: str, values: tuple[str, ...], en: str, es: str) -> Setting:
    return Setting(server, name, category, FIXED, en, es, values)


POSTFIX = [
    *_modelled("postfix", "identity", "myhostname", "mydomain", "smtpd_banner", "mail_name"),
    *_modelled("postfix", "smtpd_tls", "smtpd_tls_security_level", "smtpd_tls_wrappermode",
               "smtpd_tls_auth_only", "smtpd_tls_received_header", "smtpd_use_tls", "smtpd_enforce_tls",
               "smtpd_tls_chain_files", "smtpd_tls_cert_file", "smtpd_tls_key_file", "smtpd_tls_protocols",
               "smtpd_tls_mandatory_protocols"),
    _fixed("postfix", "smtpd_tls", "smtpd_tls_loglevel", ("1",),
           "The simulation logs what Postfix logs at level 1 (one line per TLS session).",
           "La simulación registra lo que Postfix registra en el nivel 1 (una línea por sesión TLS)."),
    *_modelled("postfix", "smtpd_auth", "smtpd_sasl_auth_enable"),
    _fixed("postfix", "smtpd_auth", "smtpd_sasl_type", ("dovecot",),
           "The simulation checks passwords itself, as Dovecot's authentication does in the lab.",
           "La simulación comprueba las contraseñas por sí misma, como lo hace la autenticación de "
           "Dovecot en el laboratorio."),
    _fixed("postfix", "smtpd_auth", "smtpd_sasl_path", ("inet:127.0.0.1:12345",),
           "Where Postfix asks Dovecot's authentication (its listener sasl): the simulation checks "
           "passwords itself.",
           "Dónde pregunta Postfix a la autenticación de Dovecot (su escucha sasl): la simulación "
           "comprueba las contraseñas por sí misma."),
    *_modelled("postfix", "access", "smtpd_client_restrictions", "smtpd_relay_restrictions", "mynetworks"),
    *_modelled("postfix", "routing", "mydestination", "relay_domains", "virtual_mailbox_domains",
               "virtual_mailbox_maps", "recipient_delimiter", "transport_maps", "default_transport",
               "relay_transport"),
    _fixed("postfix", "routing", "myorigin", ("$mydomain", "$myhostname"),
           "The domain added to an address without one: the lab's clients write whole addresses.",
           "El dominio que se añade a una dirección sin él: los clientes del laboratorio escriben "
           "direcciones completas."),
    _fixed("postfix", "routing", "local_transport", ("error:5.1.1 no local delivery in the lab",),
           "The lab delivers nothing to local accounts (mydestination is empty).",
           "El laboratorio no entrega nada a cuentas locales (mydestination está vacío)."),
    _fixed("postfix", "routing", "virtual_transport", ("virtual", "lmtp:inet:127.0.0.1:24"),
           "The simulation puts a message in its mailbox itself, as the lab's delivery agent does.",
           "La simulación pone el mensaje en su buzón por sí misma, como lo hace el agente de "
           "entrega del laboratorio."),
    _fixed("postfix", "routing", "virtual_mailbox_base", ("/run/mailtls/mail",),
           "Where the mailboxes are on disk: the simulation keeps them in memory.",
           "Dónde están los buzones en el disco: la simulación los guarda en memoria."),
    _fixed("postfix", "routing", "virtual_uid_maps", ("static:8",),
           "The owner of the mailboxes' files: the simulation keeps them in memory.",
           "El dueño de los archivos de los buzones: la simulación los guarda en memoria."),
    _fixed("postfix", "routing", "virtual_gid_maps", ("static:8",),
           "The group of the mailboxes' files: the simulation keeps them in memory.",
           "El grupo de los archivos de los buzones: la simulación los guarda en memoria."),
    _fixed("postfix", "routing", "virtual_minimum_uid", ("8",),
           "The lowest owner of mailbox files Postfix allows: the simulation keeps them in memory.",
           "El dueño más bajo de archivos de buzón que Postfix admite: la simulación los guarda en "
           "memoria."),
    *_modelled("postfix", "smtp_tls", "smtp_tls_security_level", "smtp_tls_policy_maps", "smtp_use_tls",
               "smtp_enforce_tls", "smtp_tls_enforce_peername", "smtp_tls_CAfile", "smtp_tls_CApath",
               "smtp_tls_protocols", "smtp_tls_mandatory_protocols", "smtp_tls_fingerprint_cert_match",
               "smtp_tls_fingerprint_digest", "smtp_tls_verify_cert_match", "smtp_tls_secure_cert_match",
               "smtp_tls_loglevel"),
    _fixed("postfix", "smtp_tls", "smtp_tls_session_cache_database", ("btree:${data_directory}/smtp_scache",),
           "The simulation keeps the client's TLS sessions for reuse, as this cache does.",
           "La simulación guarda las sesiones TLS del cliente para reutilizarlas, como esta caché."),
    *_modelled("postfix", "postfix_system", "syslog_name"),
    _fixed("postfix", "postfix_system", "maillog_file", ("/var/log/postfix.log",),
           "The log file the lab reads; the simulation writes each host's log where the lab reads it.",
           "El archivo de registro que lee el laboratorio; la simulación escribe el registro de cada "
           "host donde el laboratorio lo lee."),
    _fixed("postfix", "postfix_system", "inet_interfaces", ("all",),
           "The simulated servers listen on the host's address, as with all.",
           "Los servidores simulados escuchan en la dirección del host, como con all."),
    *_accepted("postfix", "postfix_system", ("inet_protocols",),
               "The lab's network has IPv4 addresses only.",
               "La red del laboratorio solo tiene direcciones IPv4."),
    *_accepted("postfix", "postfix_system", ("smtpd_peername_lookup",),
               "The lab's clients have no DNS names: Postfix logs them as unknown either way.",
               "Los clientes del laboratorio no tienen nombres DNS: Postfix los registra como "
               "unknown en cualquier caso."),
    *_accepted("postfix", "postfix_system", ("smtp_dns_support_level", "smtp_host_lookup"),
               "How the relay finds the next host: the lab has no DNS, and the simulation finds the "
               "lab's hosts by their names.",
               "Cómo encuentra el relay el siguiente host: el laboratorio no tiene DNS, y la "
               "simulación encuentra los hosts del laboratorio por su nombre."),
    *_accepted("postfix", "postfix_system", ("compatibility_level",),
               "What it changes is modelled per generation, or set explicitly in the lab's main.cf "
               "files (relay restrictions and domains).",
               "Lo que cambia está modelado para cada generación, o fijado expresamente en los main.cf "
               "del laboratorio (restricciones y dominios de reenvío)."),
    *_accepted("postfix", "postfix_system", ("readme_directory", "html_directory", "manpage_directory",
                                             "sample_directory"),
               "Where Postfix's documentation is installed.",
               "Dónde está instalada la documentación de Postfix."),
    # Each delivery service's pace (postconf(5): transport_destination_concurrency_limit and the
    # others; TRANSPORT stands for a service of master.cf, or default): not its rate delays, which
    # the simulation does not keep.
    *_accepted("postfix", "postfix_system",
               tuple("TRANSPORT_" + suffix for suffix in (
                   "delivery_slot_cost", "delivery_slot_discount", "delivery_slot_loan",
                   "destination_concurrency_failed_cohort_limit", "destination_concurrency_limit",
                   "destination_concurrency_negative_feedback", "destination_concurrency_positive_feedback",
                   "destination_recipient_limit", "extra_recipient_limit", "initial_destination_concurrency",
                   "minimum_delivery_slots", "recipient_limit", "recipient_refill_delay",
                   "recipient_refill_limit")),
               "How many deliveries run at once, and how many recipients each takes: the simulation "
               "delivers to each recipient at once.",
               "Cuántas entregas se hacen a la vez, y cuántos destinatarios lleva cada una: la "
               "simulación entrega a cada destinatario en el acto."),
    *_accepted("postfix", "postfix_system", ("biff",),
               "Notifies local users logged in to the machine: the lab has none.",
               "Avisa a los usuarios locales con sesión en la máquina: el laboratorio no tiene."),
]

DOVECOT = [
    *_modelled("dovecot", "dovecot_tls", "ssl", "ssl_min_protocol", "ssl_cipher_list", "ssl_cert", "ssl_key",
               "ssl_server_cert_file", "ssl_server_key_file"),
    *_modelled("dovecot", "dovecot_auth", "auth_allow_cleartext", "disable_plaintext_auth",
               "auth_mechanisms"),
    *(_fixed("dovecot", "dovecot_auth", name, values,
             "The lab's users and where their mail is: the simulation checks their passwords itself.",
             "Los usuarios del laboratorio y dónde está su correo: la simulación comprueba sus "
             "contraseñas por sí misma.")
      for name, values in (("passdb/driver", ("passwd-file",)),
                           ("passdb/args", ("/run/mailtls/users",)),
                           ("userdb/driver", ("static",)),
                           ("userdb/args", ("uid=mail gid=mail home=/run/mailtls/mail/{host}/%n",)),
                           ("passdb passwd-file/passwd_file_path", ("/run/mailtls/users",)),
                           ("userdb static/fields/uid", ("mail",)),
                           ("userdb static/fields/gid", ("mail",)),
                           ("userdb static/fields/home", ("/run/mailtls/mail/{host}/%{user | username}",)))),
    *_modelled("dovecot", "dovecot_listeners", "service imap-login/inet_listener */port",
               "service imap-login/inet_listener */ssl"),
    _fixed("dovecot", "dovecot_listeners", "protocols", ("imap lmtp",),
           "The simulation answers IMAP, and hands mail to the mailboxes as LMTP does.",
           "La simulación responde IMAP, y entrega el correo a los buzones como lo hace LMTP."),
    _fixed("dovecot", "dovecot_listeners", "listen", ("*",),
           "The simulated IMAP server listens on the host's address, as with *.",
           "El servidor IMAP simulado escucha en la dirección del host, como con *."),
    *(_fixed("dovecot", "dovecot_listeners", name, values,
             "How Postfix reaches Dovecot (delivery, passwords): the simulation connects them itself.",
             "Cómo llega Postfix a Dovecot (entrega, contraseñas): la simulación los conecta por sí misma.")
      for name, values in (("service lmtp/inet_listener lmtp/address", ("127.0.0.1",)),
                           ("service lmtp/inet_listener lmtp/listen", ("127.0.0.1",)),
                           ("service lmtp/inet_listener lmtp/port", ("24",)),
                           ("service auth/inet_listener sasl/address", ("127.0.0.1",)),
                           ("service auth/inet_listener sasl/listen", ("127.0.0.1",)),
                           ("service auth/inet_listener sasl/port", ("12345",)))),
    _fixed("dovecot", "dovecot_system", "hostname", ("{host}",),
           "The host's name, which the simulation uses.",
           "El nombre del host, que usa la simulación."),
    *(_fixed("dovecot", "dovecot_system", name, values,
             "Where and how mailboxes are stored: the simulation keeps them in memory.",
             "Dónde y cómo se guardan los buzones: la simulación los guarda en memoria.")
      for name, values in (("first_valid_uid", ("8",)), ("first_valid_gid", ("8",)),
                           ("mail_location", ("maildir:~/Maildir",)), ("mail_driver", ("maildir",)),
                           ("mail_path", ("~/Maildir",)))),
    _fixed("dovecot", "dovecot_system", "log_path", ("/var/log/dovecot.log",),
           "The log file the lab reads; the simulation writes the log where the lab reads it.",
           "El archivo de registro que lee el laboratorio; la simulación escribe el registro donde "
           "el laboratorio lo lee."),
    *(_fixed("dovecot", "dovecot_system", name, ("2.4.0",),
             "The version of the file's language and of the mailboxes' format: the lab's, 2.4.0.",
             "La versión del lenguaje del archivo y del formato de los buzones: la del laboratorio, 2.4.0.")
      for name in ("dovecot_config_version", "dovecot_storage_version")),
]

SETTINGS: tuple[Setting, ...] = (*POSTFIX, *DOVECOT)



def find(server: str, name: str) -> Setting | None:
    """The entry of ``server``'s setting ``name`` (a Dovecot path matches the entries' patterns),
    or None when the simulation does not model it."""
    for setting in SETTINGS:
        if setting.server == server and (setting.name == name or fnmatch.fnmatchcase(name, setting.name)):
            return setting
    return None


def opens_known_section(path: str) -> bool:
    """Whether the Dovecot section at ``path`` (``service lmtp/inet_listener lmtp``) holds any
    setting this module names, so that the section itself is understood."""
    parts = path.split("/")
    for setting in SETTINGS:
        pattern = setting.name.split("/")
        if setting.server == "dovecot" and len(pattern) > len(parts) \
                and all(fnmatch.fnmatchcase(part, p) for part, p in zip(parts, pattern, strict=False)):
            return True
    return False


def by_category(server: str | None = None) -> dict[Category, list[Setting]]:
    """The entries of each category, in the order of :data:`CATEGORIES` (and of the data)."""
    return {category: [s for s in SETTINGS if s.category == category.key and server in (None, s.server)]
            for category in CATEGORIES}
