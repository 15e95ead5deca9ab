"""The policy language: load a YAML policy into a typed :class:`Policy`, or explain why not.

A policy is checked in steps; a step runs only when the ones before it found nothing,
and each step reports every problem it finds in one pass:

1. reading and YAML (safe loader, positions of every key and value recorded);
2. the JSON Schema ``policy.schema.json`` (also printed by ``archiver schema``);
3. rules spanning several keys, and the payload templates the sinks name.

Every problem is a :class:`archiver.errors.Diagnostic`, printed as
``file:line:col: CODE message``, with 1-based line and column of the key or value
at fault (for a template's own error: the template file and line).

====  ===============================================================
code  meaning
====  ===============================================================
P001  the file is larger than 1 MiB
P002  the file cannot be read (missing, a folder, not UTF-8)
P003  YAML syntax error (points at the problem mark), or nesting over 64 levels
P004  YAML anchor or alias (refused before anything is expanded)
P005  duplicate key in a mapping
P006  YAML construct a policy cannot use (custom tag, merge key, non-text key, `.nan`,
      `.inf`, a number too long to convert)
P007  a folder given to ``validate`` holds no policy files (sub-folders included)
P008  a control character (NUL, ESC, ...) YAML cannot read, at its line and column
P009  a symlink found in a folder (``validate DIR``, ``test DIR``, ``run DIR``) that does not
      lead to a policy (or test) file of the repository: outside it, into ``.git``, to a
      hidden file or to one not named ``*.yaml``/``*.yml``; not read
S001  unknown key (the nearest known key is suggested)
S002  required key missing
S003  value of the wrong type
S004  value not among those allowed (enum, const, built-in stage type)
S005  value out of range (number bounds, length, item count)
S006  value of the wrong form (pattern)
S007  the same item twice in a list that must not repeat
S099  any other schema error
V001  the same campaign listed twice
V002  a retention rule names an outcome the outcome filter does not approve
V003  two retention rules for the same outcome
V004  more than one ``anonymized`` filter
V005  an ``outcome`` filter that approves nothing
V006  a URL that is not https:// (plain http:// only for loopback), malformed, carrying
      credentials, or naming its host in other than ASCII (a look-alike letter)
V007  ``secret_env`` that is not an upper-case environment variable name
V008  a plugin stage type no installed plugin provides
V009  more than one ``retention`` transform
V010  two audit logs writing the same file
V011  ``retry.initial_backoff_seconds`` larger than ``retry.max_backoff_seconds``
V012  an audit log path that is a folder, or is written as one (`audit/`)
V013  webhook ``url: embedded`` without ``connection.base_url: embedded``, or on a cxone policy (the cxone simulator has no receiver)
V014  a path (audit log, file sink, hold file) that resolves, after symlinks, outside the policy's repository
      (the git work tree holding the policy, else its folder) or into its ``.git``
V015  ``secret_env`` naming one of archiver's own variables (any ``CXONE_*``, ``ARCHIVER_*``)
V016  no ``anonymized`` filter (``api: campaign-archive``; cxone lists no such flag)
V017  an outcome code (outcome filter, retention rule) neither known to the API
      (``backends.catalog.known_outcomes``) nor listed in ``source.extra_outcomes``;
      not checked on ``api: cxone``, whose outcomes are the tenant's disposition names
V018  a filter or transform reads a record field the policy's backend does not provide
      (``anonymized``, ``retention_days`` on ``api: cxone``)
V019  a key that belongs to the other API (``tenant_id`` or ``action`` on
      campaign-archive, ...)
V020  ``action: retire`` without ``source.type: call_list_attempts``
V021  a key the policy's API needs is missing (``base_url`` on campaign-archive,
      ``tenant_id`` on cxone, ``source.call_list`` for call_list_attempts)
V022  ``source.since`` that is not a UTC timestamp (``2026-11-01T00:00:00Z``)
V023  a hold file (``holds[i]``) that does not exist or does not parse as a hold file
V024  a plugin stage type's own check of its options (``StageType.check``), or its failure
V025  ``source.type: call_list_attempts`` with more than one campaign (each would list,
      and archive, the same calling list's attempts)
V026  a ``file`` sink ``path`` with a brace that is not part of ``{campaign}`` or
      ``{date}`` (a format spec, conversion, attribute, unknown name or literal brace),
      or one that runs through a file (``policy.yaml/{campaign}/``)
T001  a template file that does not exist
T002  a template that does not compile (template file and line)
T003  a template that fails to render a sample event to JSON (template file and line),
      or passes a render bound (time, loop iterations, output, value sizes:
      ``archiver.templates.bounds``)
T004  a template that is not a ``*.j2`` file inside the policy's repository (symlinks
      followed)
====  ===============================================================
"""

from __future__ import annotations

from archiver.policy._loader import (
    MAX_BYTES,
    check_file,
    check_paths,
    load_policy,
    load_policy_text,
    policy_files,
)
from archiver.policy._schema import SCHEMA
from archiver.policy.model import Policy

__all__ = [
    "MAX_BYTES",
    "SCHEMA",
    "Policy",
    "check_file",
    "check_paths",
    "load_policy",
    "load_policy_text",
    "policy_files",
]
