"""The controlled vocabulary of needs, in the report's own terms.

The kinds are the needs the INTEGRA survey's practitioners named (Q12 solutions, Q14 needs, Q15
barriers): education and training first (68% of Q12, 22.22% of Q14); access to materials,
"professional guides and special toolboxes" (53.8% have none); protocols of procedures
(17.78%); information sharing and data management (15.56%) and communication protocols
(12.22%); multi-agency cooperation and a network of experts; experienced, specialised staff
(21% of the barriers). A need is tagged with the terms the registry and the practice database
already use: target groups and areas (registry), settings and intervention types (practices).
"""

from enum import StrEnum

from practices.vocabulary import InterventionType, Setting
from registry.vocabulary import Area, TargetGroup


class NeedKind(StrEnum):
    training = "training"
    tools = "tools"  # materials, toolboxes, assessment instruments
    guidance = "guidance"  # professional guides, handbooks
    protocols = "protocols"  # procedures for cooperation and reporting
    information_sharing = "information_sharing"  # data management, access to information
    communication = "communication"  # communication channels and protocols
    cooperation = "cooperation"  # multi-agency cooperation, contacts, a network of experts
    staffing = "staffing"  # experienced, specialised, permanent staff
    other = "other"


class NeedStatus(StrEnum):
    open = "open"
    addressed = "addressed"


# The tag facets of a need: the field that holds them and the vocabulary of their terms.
FACETS: dict[str, type[StrEnum]] = {
    "target_group": TargetGroup,
    "setting": Setting,
    "area": Area,
    "intervention_type": InterventionType,
}
FIELDS: dict[str, str] = {
    "target_group": "target_groups",
    "setting": "settings",
    "area": "areas",
    "intervention_type": "intervention_types",
}
