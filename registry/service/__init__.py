"""The registry's rules: who may change what, what must hold before a change is stored.

One module per record type; the names the routes, the import and the CLI call are here.
"""

from registry.service.contact_points import (
    create_contact_point,
    erase_contact_point,
    list_contact_points,
    normalise_phones,
    read_contact_point,
    update_contact_point,
)
from registry.service.organisations import (
    apply_organisation_changes,
    archive_organisation,
    contact_point_dict,
    create_organisation,
    get_organisation,
    organisation_read,
    update_organisation,
)
from registry.service.protocols import (
    apply_protocol_changes,
    archive_protocol,
    create_protocol,
    get_protocol,
    protocol_reads,
    update_protocol,
)

__all__ = [
    "apply_organisation_changes",
    "apply_protocol_changes",
    "archive_organisation",
    "archive_protocol",
    "contact_point_dict",
    "create_contact_point",
    "create_organisation",
    "create_protocol",
    "erase_contact_point",
    "get_organisation",
    "get_protocol",
    "list_contact_points",
    "normalise_phones",
    "organisation_read",
    "protocol_reads",
    "read_contact_point",
    "update_contact_point",
    "update_organisation",
    "update_protocol",
]
