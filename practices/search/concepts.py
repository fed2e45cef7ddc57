"""The controlled vocabularies' concepts in five languages, so that a query word naming a concept
in any of them finds the records filed under it and the records that name it in another.

Not yet wired into the adapters (issue 16). Each concept has its label in each language (the
web interface's label of the code and that label's translation in the web catalogues:
`tests/practices/test_analysis.py` holds them equal, so the web may later read its labels
from here) and synonyms: other names practitioners use, and the inflected forms a stemmer does
not join. Beside the vocabularies filed as facets (kind, intervention type, process focus,
setting, target group), the registry's areas and a few domain terms that name no facet
(radicalisation, terrorism, recidivism, ...) are concepts too: they match text only.

No maintained multilingual thesaurus is installable from the package registries: PyPI's
`eurovoc` package downloads EuroVoc from the EU's site at run time, which this project's
machines cannot reach (and it could not be inspected here), so the terms below are written
out; EuroVoc, a general-purpose thesaurus, would in any case not cover codes such as "exit
programme" or "risk and needs assessment".
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from practices.search.analysis import LANGUAGES, AnalysedQuery, analyse_words

# The search facet each vocabulary files records under; the others match text only.
FACET_OF: dict[str, str | None] = {
    "kind": "kind",
    "intervention_type": "intervention_type",
    "process_focus": "process_focus",
    "setting": "setting",
    "target_group": "target_group",
    "area": None,
    "term": None,
}


@dataclass(frozen=True)
class Concept:
    vocabulary: str
    code: str
    labels: Mapping[str, str]
    synonyms: Mapping[str, tuple[str, ...]]

    @property
    def facet(self) -> str | None:
        return FACET_OF[self.vocabulary]

    def names(self, language: str) -> tuple[str, ...]:
        """Its label and synonyms in ``language``."""
        label = self.labels.get(language)
        return ((label,) if label else ()) + self.synonyms.get(language, ())


def _c(
    vocabulary: str,
    code: str,
    labels: tuple[str, str, str, str, str],
    **synonyms: str,
) -> Concept:
    """A concept from its labels in en, fr, pt, el, bg, and synonyms by language, separated by
    semicolons."""
    return Concept(
        vocabulary,
        code,
        dict(zip(LANGUAGES, labels, strict=True)),
        {
            lang: tuple(s.strip() for s in names.split(";") if s.strip())
            for lang, names in synonyms.items()
        },
    )


CONCEPTS: tuple[Concept, ...] = (
    # --- kinds ----------------------------------------------------------------------------
    _c(
        "kind",
        "practice",
        ("Practice", "Pratique", "Prática", "Πρακτική", "Практика"),
        en="good practice; inspiring practice",
        fr="bonne pratique",
        pt="boa prática",
        el="καλή πρακτική",
        bg="добра практика",
    ),
    _c(
        "kind",
        "policy",
        ("Policy", "Politique", "Política", "Πολιτική", "Политика"),
        en="strategy; action plan; national plan",
        fr="stratégie; plan d'action; plan national",
        pt="estratégia; plano de ação; plano nacional",
        el="στρατηγική; σχέδιο δράσης",
        bg="стратегия; план за действие; национален план",
    ),
    _c(
        "kind",
        "tool",
        ("Tool", "Outil", "Ferramenta", "Εργαλείο", "Инструмент"),
        en="checklist; instrument; toolkit",
        fr="liste de contrôle; instrument",
        pt="lista de verificação; instrumento",
        el="λίστα ελέγχου",
        bg="контролен списък",
    ),
    _c(
        "kind",
        "training_kit",
        (
            "Training kit",
            "Kit de formation",
            "Kit de formação",
            "Εκπαιδευτικό υλικό",
            "Обучителен комплект",
        ),
        en="training course; training module; curriculum",
        fr="module de formation; cours",
        pt="curso de formação; módulo de formação",
        el="εκπαιδευτικό πρόγραμμα; σεμινάριο",
        bg="обучителен курс; обучителен модул",
    ),
    _c(
        "kind",
        "guide",
        ("Guide", "Guide", "Guia", "Οδηγός", "Ръководство"),
        en="handbook; manual",
        fr="manuel",
        pt="manual",
        el="εγχειρίδιο",
        bg="наръчник",
    ),
    # --- intervention types ---------------------------------------------------------------
    _c(
        "intervention_type",
        "psychological_support",
        (
            "Psychological support",
            "Soutien psychologique",
            "Apoio psicológico",
            "Ψυχολογική υποστήριξη",
            "Психологическа подкрепа",
        ),
        en="psychologist; psychosocial support; psychotherapy",
        fr="accompagnement psychologique; psychologue; soutien psychosocial",
        pt="acompanhamento psicológico; psicólogo; apoio psicossocial",
        el="ψυχολογική στήριξη; ψυχοκοινωνική στήριξη; ψυχολόγος",
        bg="психологическа помощ; психолог; психосоциална подкрепа",
    ),
    _c(
        "intervention_type",
        "cognitive_behavioural",
        (
            "Cognitive-behavioural programme",
            "Programme cognitivo-comportemental",
            "Programa cognitivo-comportamental",
            "Γνωστικο-συμπεριφορικό πρόγραμμα",
            "Когнитивно-поведенческа програма",
        ),
        en="cognitive behavioural therapy; CBT; cognitive-behavioural intervention",
        fr="thérapie cognitivo-comportementale; TCC",
        pt="terapia cognitivo-comportamental",
        el="γνωστική συμπεριφορική θεραπεία",
        bg="когнитивно-поведенческа терапия",
    ),
    _c(
        "intervention_type",
        "social_work",
        ("Social work", "Travail social", "Serviço social", "Κοινωνική εργασία", "Социална работа"),
        en="social worker; social services",
        fr="travailleur social; assistant social",
        pt="assistente social; técnico de reinserção social",
        el="κοινωνικός λειτουργός",
        bg="социален работник",
    ),
    _c(
        "intervention_type",
        "faith_based_dialogue",
        (
            "Faith-based dialogue",
            "Dialogue religieux",
            "Diálogo de base religiosa",
            "Διάλογος με θρησκευτική βάση",
            "Диалог на религиозна основа",
        ),
        en="religious dialogue; chaplain; imam; spiritual assistance",
        fr="aumônier; aumônerie; dialogue interreligieux; assistance spirituelle",
        pt="assistência religiosa; assistência espiritual; capelão",
        el="θρησκευτικός διάλογος; ιερέας φυλακών; πνευματική στήριξη",
        bg="религиозен диалог; свещеник; имам; духовна помощ",
    ),
    _c(
        "intervention_type",
        "education",
        ("Education", "Éducation", "Educação", "Εκπαίδευση", "Образование"),
        en="school; schooling; courses; literacy",
        fr="enseignement; école; scolarité",
        pt="ensino; escola; projeto educativo",
        el="σχολείο; σχολείο δεύτερης ευκαιρίας",
        bg="училище; обучение; курсове",
    ),
    _c(
        "intervention_type",
        "vocational_training",
        (
            "Vocational training",
            "Formation professionnelle",
            "Formação profissional",
            "Επαγγελματική κατάρτιση",
            "Професионално обучение",
        ),
        en="vocational programme; job training; apprenticeship",
        fr="apprentissage; formation qualifiante",
        pt="formação modular; curso profissional",
        el="επαγγελματική εκπαίδευση; κατάρτιση",
        bg="професионална квалификация",
    ),
    _c(
        "intervention_type",
        "creative_arts_therapy",
        (
            "Creative arts therapy",
            "Art-thérapie",
            "Terapia pelas artes",
            "Θεραπεία μέσω τέχνης",
            "Арт терапия",
        ),
        en="art therapy; drama therapy; music therapy",
        fr="art thérapie; théâtre; musique",
        pt="arteterapia; teatro; música",
        el="εικαστική θεραπεία; θεατρικό εργαστήρι",
        bg="арттерапия; изкуство; театър",
    ),
    _c(
        "intervention_type",
        "sport",
        ("Sport", "Sport", "Desporto", "Αθλητισμός", "Спорт"),
        en="sports; physical activity; football",
        fr="activité physique; football",
        pt="atividade física; esporte; futebol; desportivas",
        el="άθληση; φυσική δραστηριότητα; ποδόσφαιρο",
        bg="физическа активност; футбол",
    ),
    _c(
        "intervention_type",
        "family_support",
        (
            "Family support",
            "Soutien aux familles",
            "Apoio à família",
            "Υποστήριξη οικογένειας",
            "Подкрепа за семейството",
        ),
        en="family counselling; parents; support for families",
        fr="accompagnement des familles; soutien familial; conseil aux familles; parents",
        pt="apoio às famílias; apoio familiar; aconselhamento familiar",
        el="στήριξη οικογένειας; συμβουλευτική οικογένειας; γονείς",
        bg="семейна подкрепа; семейно консултиране; подкрепа за семейства; родители",
    ),
    _c(
        "intervention_type",
        "social_cultural_recreational",
        (
            "Social, cultural and recreational activities",
            "Activités sociales, culturelles et de loisirs",
            "Atividades sociais, culturais e recreativas",
            "Κοινωνικές, πολιτιστικές και ψυχαγωγικές δραστηριότητες",
            "Социални, културни и развлекателни дейности",
        ),
        en="cultural activities; recreational activities; leisure",
        fr="activités culturelles; loisirs",
        pt="atividades culturais; atividades recreativas",
        el="πολιτιστικές δραστηριότητες; ψυχαγωγικές δραστηριότητες",
        bg="културни дейности; развлекателни дейности",
    ),
    _c(
        "intervention_type",
        "mentoring",
        ("Mentoring", "Mentorat", "Mentoria", "Καθοδήγηση (mentoring)", "Наставничество"),
        en="mentor; mentors; coaching",
        fr="mentor; tutorat; parrainage",
        pt="mentor; mentores; tutoria",
        el="μέντορας; μέντορες; mentoring",
        bg="наставник; наставници; ментор; менторство",
    ),
    _c(
        "intervention_type",
        "exit_programme",
        (
            "Exit programme",
            "Programme de sortie",
            "Programa de saída",
            "Πρόγραμμα αποχώρησης",
            "Програма за излизане",
        ),
        en="exit work; leaving extremism",
        fr="sortie de l'extrémisme; programme exit",
        pt="estratégia de saída; programa exit; saída do extremismo",
        el="πρόγραμμα εξόδου; έξοδος από τον εξτρεμισμό",
        bg="програма за изход; изход от екстремизма",
    ),
    _c(
        "intervention_type",
        "risk_needs_assessment",
        (
            "Risk and needs assessment",
            "Évaluation des risques et des besoins",
            "Avaliação de riscos e necessidades",
            "Αξιολόγηση κινδύνου και αναγκών",
            "Оценка на риска и нуждите",
        ),
        en="risk assessment; needs assessment; risk evaluation; indicators",
        fr="évaluation des risques; grille d'évaluation; repérage",
        pt="avaliação de risco; avaliação inicial",
        el="αξιολόγηση κινδύνου; εκτίμηση κινδύνου",
        bg="оценка на риска; индикатори",
    ),
    _c(
        "intervention_type",
        "multi_agency_case_management",
        (
            "Multi-agency case management",
            "Gestion de cas pluri-institutionnelle",
            "Gestão de casos multi-institucional",
            "Διυπηρεσιακή διαχείριση περιπτώσεων",
            "Междуведомствено управление на случаи",
        ),
        en="multi-agency cooperation; interagency cooperation; case management",
        fr="coopération multi-agences; partenariat; suivi pluridisciplinaire",
        pt="cooperação multiagência; parcerias; gestão de casos",
        el="πολυφορεακή συνεργασία; διυπηρεσιακή συνεργασία",
        bg="междуинституционално сътрудничество; взаимодействие между институциите",
    ),
    _c(
        "intervention_type",
        "staff_training",
        (
            "Staff training",
            "Formation du personnel",
            "Formação de pessoal",
            "Εκπαίδευση προσωπικού",
            "Обучение на персонала",
        ),
        en="training of staff; prison staff training; awareness raising",
        fr="formation des personnels; sensibilisation des personnels",
        pt="formação do pessoal; formação dos profissionais",
        el="κατάρτιση προσωπικού; εκπαίδευση υπαλλήλων",
        bg="обучение на служителите; обучение на служители",
    ),
    _c(
        "intervention_type",
        "after_care",
        (
            "After-care",
            "Suivi post-intervention",
            "Acompanhamento posterior",
            "Μεταθεραπευτική φροντίδα",
            "Последваща грижа",
        ),
        en="aftercare; post-custodial care; post-release support",
        fr="suivi post-libération; accompagnement à la sortie",
        pt="acompanhamento pós-libertação",
        el="μετασωφρονιστική μέριμνα; μετασωφρονιστική φροντίδα",
        bg="следпенитенциарна грижа; подкрепа след освобождаване",
    ),
    _c(
        "intervention_type",
        "employment_housing_support",
        (
            "Employment and housing support",
            "Aide à l'emploi et au logement",
            "Apoio ao emprego e à habitação",
            "Υποστήριξη απασχόλησης και στέγασης",
            "Подкрепа за заетост и жилище",
        ),
        en="employment support; housing support; accommodation; job; benefit",
        fr="aide à l'emploi; logement; hébergement",
        pt="emprego; habitação; alojamento",
        el="απασχόληση; στέγαση; επίδομα; πρόσληψη",
        bg="заетост; жилище; работа; настаняване",
    ),
    _c(
        "intervention_type",
        "counter_narratives",
        (
            "Counter-narratives",
            "Contre-discours",
            "Contranarrativas",
            "Αντι-αφηγήματα",
            "Контранаративи",
        ),
        en="counter-narrative; counter-speech; alternative narratives",
        fr="contre-récit; discours alternatif",
        pt="contranarrativa; contradiscurso",
        el="αντι-αφήγημα; εναλλακτικά αφηγήματα",
        bg="контранаратив; алтернативни послания",
    ),
    # --- process focus --------------------------------------------------------------------
    _c(
        "process_focus",
        "deradicalisation",
        (
            "Deradicalisation",
            "Déradicalisation",
            "Desradicalização",
            "Αποριζοσπαστικοποίηση",
            "Дерадикализация",
        ),
        en="de-radicalisation; deradicalising",
        fr="déradicaliser",
        pt="desradicalizar",
        el="αποριζοσπαστικοποίησης",
        bg="дерадикализиране",
    ),
    _c(
        "process_focus",
        "disengagement",
        ("Disengagement", "Désengagement", "Desvinculação", "Αποδέσμευση", "Отдръпване"),
        en="disengaging; leaving violence",
        fr="se désengager",
        pt="desengajamento; desvinculação da violência",
        el="αποδέσμευση από τη βία",
        bg="дезангажиране; откъсване от насилието",
    ),
    _c(
        "process_focus",
        "rehabilitation_reintegration",
        (
            "Rehabilitation and reintegration",
            "Réhabilitation et réinsertion",
            "Reabilitação e reinserção",
            "Αποκατάσταση και επανένταξη",
            "Рехабилитация и реинтеграция",
        ),
        en="rehabilitation; reintegration; resettlement",
        fr="réinsertion; réinsertion sociale; réhabilitation; réaffiliation",
        pt="reinserção; reinserção social; reabilitação; ressocialização",
        el="επανένταξη; κοινωνική επανένταξη; αποκατάσταση",
        bg="реинтеграция; реинтегриране; реинтегрират; ресоциализация; рехабилитация",
    ),
    _c(
        "process_focus",
        "prevention",
        ("Prevention", "Prévention", "Prevenção", "Πρόληψη", "Превенция"),
        en="preventing; prevent",
        fr="prévenir",
        pt="prevenir",
        el="πρόληψη ριζοσπαστικοποίησης",
        bg="предотвратяване",
    ),
    # --- settings -------------------------------------------------------------------------
    _c(
        "setting",
        "prison",
        ("Prison", "Prison", "Prisão", "Φυλακή", "Затвор"),
        en="prisons; inmates; custody; penitentiary; jail",
        fr="milieu fermé; établissement pénitentiaire; détention; pénitentiaire",
        pt="prisões; prisional; estabelecimento prisional; meio prisional; cadeia",
        el="φυλακές; κατάστημα κράτησης; καταστήματα κράτησης; σωφρονιστικό κατάστημα",
        bg="затвори; затворническа администрация; място за лишаване от свобода",
    ),
    _c(
        "setting",
        "pre_trial_detention",
        (
            "Pre-trial detention",
            "Détention provisoire",
            "Prisão preventiva",
            "Προσωρινή κράτηση",
            "Предварително задържане",
        ),
        en="remand; remand prisoners; custody on remand",
        fr="prévenus; maison d'arrêt",
        pt="presos preventivos",
        el="υπόδικοι; προφυλάκιση",
        bg="арест; арести; задържане под стража",
    ),
    _c(
        "setting",
        "probation",
        (
            "Probation",
            "Probation",
            "Liberdade condicional e penas na comunidade",
            "Επιτήρηση (probation)",
            "Пробация",
        ),
        en="probation service; community sentences; probation officers",
        fr="milieu ouvert; SPIP; service pénitentiaire d'insertion et de probation",
        pt="liberdade condicional; penas na comunidade; execução de penas na comunidade",
        el="επιμελητές ανηλίκων; υπηρεσίες επιμελητών; κοινωφελής εργασία",
        bg="пробационна служба; пробационни служби; пробационер",
    ),
    _c(
        "setting",
        "community",
        ("Community", "Milieu ouvert", "Comunidade", "Κοινότητα", "Общност"),
        en="local community; municipality; civil society",
        fr="communauté; collectivité; société civile",
        pt="sociedade civil; município",
        el="τοπική κοινωνία; δήμος",
        bg="общество; община; гражданско общество",
    ),
    _c(
        "setting",
        "post_release",
        (
            "After release",
            "Après la libération",
            "Após a libertação",
            "Μετά την αποφυλάκιση",
            "След освобождаване",
        ),
        en="post-release; release; leaving prison; resettlement",
        fr="sortie de prison; sortie de détention; libération",
        pt="pós-libertação; libertação; saída da prisão",
        el="αποφυλάκιση; αποφυλακισμένοι",
        bg="освобождаване; след излизане от затвора",
    ),
    _c(
        "setting",
        "juvenile_justice",
        (
            "Juvenile justice",
            "Justice des mineurs",
            "Justiça juvenil",
            "Δικαιοσύνη ανηλίκων",
            "Правосъдие за непълнолетни",
        ),
        en="youth justice; young offenders; minors",
        fr="mineurs; protection judiciaire de la jeunesse",
        pt="centros educativos; jovens delinquentes",
        el="ανήλικοι παραβάτες; νεαροί παραβάτες",
        bg="детско правосъдие; малолетни и непълнолетни",
    ),
    # --- target groups --------------------------------------------------------------------
    _c(
        "target_group",
        "adults",
        ("Adults", "Adultes", "Adultos", "Ενήλικες", "Пълнолетни"),
        en="adult",
        fr="adulte",
        pt="adulto",
        el="ενήλικας",
        bg="възрастни",
    ),
    _c(
        "target_group",
        "juveniles_young_adults",
        (
            "Juveniles and young adults",
            "Mineurs et jeunes adultes",
            "Jovens e jovens adultos",
            "Ανήλικοι και νεαροί ενήλικες",
            "Непълнолетни и млади пълнолетни",
        ),
        en="young people; youth; minors; juveniles",
        fr="jeunes; mineurs",
        pt="jovens; menores",
        el="νέοι; ανήλικοι; νεαροί",
        bg="младежи; непълнолетни; млади хора",
    ),
    _c(
        "target_group",
        "women",
        ("Women", "Femmes", "Mulheres", "Γυναίκες", "Жени"),
        en="female; woman",
        fr="femme",
        pt="mulher",
        el="γυναίκα",
        bg="жена",
    ),
    _c(
        "target_group",
        "first_time_offenders",
        (
            "First-time offenders",
            "Primo-délinquants",
            "Delinquentes primários",
            "Πρωτοεμφανιζόμενοι παραβάτες",
            "Извършители за първи път",
        ),
        en="first offenders",
        fr="primo-délinquant",
        pt="primeira condenação",
        el="πρωτόπειροι παραβάτες",
        bg="първо осъждане",
    ),
    _c(
        "target_group",
        "returnees_and_families",
        (
            "Returnees and their families",
            "Personnes de retour et leurs familles",
            "Regressados e respetivas famílias",
            "Επαναπατριζόμενοι και οι οικογένειές τους",
            "Завърнали се лица и техните семейства",
        ),
        en="returnees; returning foreign fighters",
        fr="revenants; returnees",
        pt="combatentes regressados",
        el="επιστρέφοντες μαχητές",
        bg="завърнали се бойци",
    ),
    _c(
        "target_group",
        "families",
        ("Families", "Familles", "Famílias", "Οικογένειες", "Семейства"),
        en="family; parents; relatives",
        fr="famille; parents; proches",
        pt="família; pais; familiares",
        el="οικογένεια; γονείς",
        bg="семейство; родители; близки",
    ),
    _c(
        "target_group",
        "prisoners",
        ("Prisoners", "Personnes détenues", "Reclusos", "Κρατούμενοι", "Лишени от свобода"),
        en="prisoner; inmates; inmate; detainees",
        fr="détenus; détenu; personnes incarcérées",
        pt="recluso; presos; preso",
        el="κρατούμενος; έγκλειστοι",
        bg="лишените от свобода; затворници; затворник",
    ),
    _c(
        "target_group",
        "pre_trial_detainees",
        (
            "Pre-trial detainees",
            "Prévenus",
            "Presos preventivos",
            "Υπόδικοι",
            "Задържани под стража",
        ),
        en="remand prisoners; remand inmates",
        fr="prévenu; détenus en détention provisoire",
        pt="arguidos presos; preso preventivo",
        el="υπόδικος",
        bg="обвиняеми; задържани",
    ),
    _c(
        "target_group",
        "probationers",
        (
            "People on probation",
            "Personnes sous main de justice en milieu ouvert",
            "Pessoas em liberdade condicional",
            "Άτομα υπό επιτήρηση",
            "Лица на пробация",
        ),
        en="probationers; offenders under supervision",
        fr="probationnaires; personnes suivies",
        pt="condenados a penas na comunidade",
        el="επιτηρούμενοι",
        bg="пробационери",
    ),
    _c(
        "target_group",
        "released_prisoners",
        (
            "Released prisoners",
            "Personnes libérées",
            "Ex-reclusos",
            "Αποφυλακισμένοι",
            "Освободени лица",
        ),
        en="ex-prisoners; former prisoners; ex-offenders",
        fr="sortants de prison; ex-détenus",
        pt="ex-presos; libertados",
        el="αποφυλακιζόμενοι; πρώην κρατούμενοι",
        bg="освободени затворници; бивши затворници",
    ),
    _c(
        "target_group",
        "foreign_nationals",
        (
            "Foreign nationals",
            "Ressortissants étrangers",
            "Cidadãos estrangeiros",
            "Αλλοδαποί",
            "Чужди граждани",
        ),
        en="foreigners; migrants; refugees",
        fr="étrangers; migrants",
        pt="estrangeiros; migrantes",
        el="μετανάστες; πρόσφυγες",
        bg="чужденци; мигранти",
    ),
    _c(
        "target_group",
        "victims",
        ("Victims", "Victimes", "Vítimas", "Θύματα", "Жертви"),
        en="victim",
        fr="victime",
        pt="vítima",
        el="θύμα",
        bg="жертва; пострадали",
    ),
    _c(
        "target_group",
        "communities",
        ("Communities", "Communautés", "Comunidades", "Κοινότητες", "Общности"),
        en="community",
        fr="communauté",
        pt="comunidade",
        el="κοινότητα",
        bg="общност",
    ),
    _c(
        "target_group",
        "practitioners",
        ("Practitioners", "Professionnels", "Profissionais", "Επαγγελματίες", "Специалисти"),
        en="first-line practitioners; professionals; staff",
        fr="praticiens; personnels",
        pt="técnicos; pessoal",
        el="προσωπικό; στελέχη",
        bg="служители; професионалисти",
    ),
    # --- the registry's areas (text only) -------------------------------------------------
    _c(
        "area",
        "rehabilitation",
        ("Rehabilitation", "Réhabilitation", "Reabilitação", "Αποκατάσταση", "Рехабилитация"),
    ),
    _c(
        "area",
        "disengagement",
        ("Disengagement", "Désengagement", "Desvinculação", "Αποδέσμευση", "Отдръпване"),
        bg="дезангажиране",
    ),
    _c(
        "area",
        "deradicalisation",
        (
            "Deradicalisation",
            "Déradicalisation",
            "Desradicalização",
            "Αποριζοσπαστικοποίηση",
            "Дерадикализация",
        ),
    ),
    _c(
        "area",
        "reintegration",
        ("Reintegration", "Réinsertion", "Reinserção", "Επανένταξη", "Реинтеграция"),
        bg="реинтегриране; реинтегрират; ресоциализация",
    ),
    _c(
        "area",
        "risk_assessment",
        (
            "Risk assessment",
            "Évaluation des risques",
            "Avaliação de risco",
            "Αξιολόγηση κινδύνου",
            "Оценка на риска",
        ),
    ),
    _c("area", "prevention", ("Prevention", "Prévention", "Prevenção", "Πρόληψη", "Превенция")),
    _c(
        "area",
        "after_care",
        (
            "After-care",
            "Suivi post-intervention",
            "Acompanhamento posterior",
            "Μεταθεραπευτική φροντίδα",
            "Последваща грижа",
        ),
    ),
    _c(
        "area",
        "family_support",
        (
            "Family support",
            "Soutien aux familles",
            "Apoio à família",
            "Υποστήριξη οικογένειας",
            "Подкрепа за семейството",
        ),
    ),
    _c(
        "area",
        "training",
        ("Training", "Formation", "Formação", "Κατάρτιση", "Обучение"),
        el="εκπαίδευση",
    ),
    _c(
        "area",
        "coordination",
        ("Coordination", "Coordination", "Coordenação", "Συντονισμός", "Координация"),
    ),
    _c(
        "area",
        "information_sharing",
        (
            "Information sharing",
            "Partage d'informations",
            "Partilha de informação",
            "Ανταλλαγή πληροφοριών",
            "Обмен на информация",
        ),
        en="information exchange; exchange of information; information-sharing; "
        "information sharing between agencies; interagency information sharing",
        fr="échange d'informations; échange d'information; "
        "échange d'informations entre services; partage d'informations entre services",
        pt="partilha de informações; troca de informações; partilha de informações entre serviços",
        el="ανταλλαγή πληροφορίας; διάχυση πληροφοριών; ανταλλαγή πληροφοριών μεταξύ υπηρεσιών",
        bg="споделяне на информация; обмен на информация между институциите",
    ),
    _c(
        "area",
        "research",
        ("Research", "Recherche", "Investigação", "Έρευνα", "Изследвания"),
        en="survey; study",
        fr="enquête; étude",
        pt="inquérito; estudo",
        el="μελέτη",
        bg="проучване",
    ),
    _c(
        "area",
        "victim_support",
        (
            "Victim support",
            "Aide aux victimes",
            "Apoio à vítima",
            "Υποστήριξη θυμάτων",
            "Подкрепа за жертви",
        ),
    ),
    _c("area", "education", ("Education", "Éducation", "Educação", "Εκπαίδευση", "Образование")),
    _c(
        "area",
        "employment",
        ("Employment", "Emploi", "Emprego", "Απασχόληση", "Заетост"),
        en="job; work",
        fr="travail",
        pt="trabalho",
        el="εργασία",
        bg="работа",
    ),
    _c(
        "area",
        "housing",
        ("Housing", "Logement", "Habitação", "Στέγαση", "Жилищно настаняване"),
        en="accommodation",
        fr="hébergement",
        pt="alojamento",
        el="διαμονή",
        bg="жилище",
    ),
    _c(
        "area",
        "health_care",
        (
            "Health care",
            "Soins de santé",
            "Cuidados de saúde",
            "Υγειονομική περίθαλψη",
            "Здравеопазване",
        ),
    ),
    _c(
        "area",
        "mental_health",
        ("Mental health", "Santé mentale", "Saúde mental", "Ψυχική υγεία", "Психично здраве"),
        en="psychiatry; psychiatric",
        fr="psychiatrie",
        pt="psiquiatria",
        el="ψυχιατρική",
        bg="психиатрия",
    ),
    _c(
        "area",
        "legal_aid",
        ("Legal aid", "Aide juridique", "Apoio jurídico", "Νομική βοήθεια", "Правна помощ"),
        en="legal counselling",
        fr="conseil juridique",
        pt="aconselhamento jurídico",
        el="νομική συμβουλευτική",
        bg="правна консултация",
    ),
    _c(
        "area",
        "faith_counselling",
        (
            "Faith counselling",
            "Accompagnement religieux",
            "Aconselhamento religioso",
            "Πνευματική συμβουλευτική",
            "Духовно консултиране",
        ),
    ),
    _c(
        "area",
        "supervision",
        ("Supervision", "Suivi et contrôle", "Supervisão", "Εποπτεία", "Надзор"),
    ),
    # --- domain terms that name no facet (text only) --------------------------------------
    _c(
        "term",
        "radicalisation",
        (
            "Radicalisation",
            "Radicalisation",
            "Radicalização",
            "Ριζοσπαστικοποίηση",
            "Радикализация",
        ),
        en="radicalised; radical",
        fr="radicalisé; radicalisée",
        pt="radicalizado",
        el="ριζοσπαστικοποιημένος",
        bg="радикализиран; радикализирани",
    ),
    _c(
        "term",
        "terrorism",
        ("Terrorism", "Terrorisme", "Terrorismo", "Τρομοκρατία", "Тероризъм"),
        en="terrorist; counter-terrorism; antiterrorism; fight against terrorism",
        fr="terroriste; antiterroriste; lutte antiterroriste; contre-terrorisme; "
        "lutte contre le terrorisme",
        pt="terrorista; antiterrorismo; contraterrorismo; combate ao terrorismo; "
        "luta contra o terrorismo",
        el="τρομοκράτης; αντιτρομοκρατική; καταπολέμηση της τρομοκρατίας",
        bg="терористичен; терорист; противодействие на тероризма; борба с тероризма",
    ),
    _c(
        "term",
        "violent_extremism",
        (
            "Violent extremism",
            "Extrémisme violent",
            "Extremismo violento",
            "Βίαιος εξτρεμισμός",
            "Насилствен екстремизъм",
        ),
        en="extremism; extremist; extremists",
        fr="extrémisme; extrémiste",
        pt="extremismo; extremista; extremistas",
        el="εξτρεμισμός; εξτρεμιστής",
        bg="екстремизъм; екстремист; екстремистки",
    ),
    _c(
        "term",
        "recidivism",
        ("Recidivism", "Récidive", "Reincidência", "Υποτροπή", "Рецидив"),
        en="reoffending; re-offending",
        fr="prévention de la récidive; récidiviste",
        pt="reincidente",
        el="υποτροπή παραβατικότητας",
        bg="повторно престъпление",
    ),
    _c(
        "term",
        "foreign_fighters",
        (
            "Foreign fighters",
            "Combattants étrangers",
            "Combatentes estrangeiros",
            "Ξένοι μαχητές",
            "Чуждестранни бойци",
        ),
        en="foreign terrorist fighters; combat abroad",
        fr="djihadistes partis à l'étranger",
        pt="combatentes terroristas estrangeiros",
        el="αλλοδαποί μαχητές",
        bg="чуждестранни терористи бойци",
    ),
    _c(
        "term",
        "counselling",
        ("Counselling", "Conseil", "Aconselhamento", "Συμβουλευτική", "Консултиране"),
        en="counsellor; counsellors; helpline; advice",
        fr="écoute; ligne d'écoute; conseiller",
        pt="linha de apoio; conselheiro",
        el="σύμβουλος; τηλεφωνική γραμμή",
        bg="консултации; консултант; гореща линия",
    ),
    _c(
        "term",
        "probation_service",
        (
            "Probation service",
            "Service de probation",
            "Serviço de reinserção",
            "Υπηρεσία επιμελητών",
            "Пробационна служба",
        ),
        en="probation services; probation officers",
        fr="SPIP; conseillers d'insertion et de probation",
        pt="DGRSP; técnicos de reinserção",
        el="επιμελητές",
        bg="пробационни служби",
    ),
)


@dataclass(frozen=True)
class ConceptMatch:
    """A concept named by the query's words `start` to `end` (exclusive, in
    `AnalysedQuery.words`)."""

    concept: Concept
    start: int
    end: int


Phrase = tuple[frozenset[str], ...]


@lru_cache(maxsize=1)
def _phrases() -> dict[str, list[tuple[Phrase, Concept]]]:
    """Every name of every concept as the index forms of its words, by its first word's
    forms: a query word's forms find the names that may start there."""
    by_first: dict[str, list[tuple[Phrase, Concept]]] = {}
    for concept in CONCEPTS:
        for language in LANGUAGES:
            for name in concept.names(language):
                phrase = tuple(frozenset(forms) for forms in analyse_words(name, language))
                if not phrase:
                    continue
                for form in phrase[0]:
                    entries = by_first.setdefault(form, [])
                    if (phrase, concept) not in entries:
                        entries.append((phrase, concept))
    return by_first


def find_concepts(query: AnalysedQuery) -> list[ConceptMatch]:
    """The concepts the query's words name, in any language, left to right, each run of words
    taken by its longest name (one run may name several concepts: "Prevention" is a process
    focus and an area)."""
    phrases = _phrases()
    words = query.words
    found: list[ConceptMatch] = []
    i = 0
    while i < len(words):
        best: list[tuple[int, Concept]] = []
        for form in words[i].forms:
            for phrase, concept in phrases.get(form, ()):
                end = i + len(phrase)
                if end <= len(words) and all(
                    words[i + k].forms & phrase[k] for k in range(len(phrase))
                ):
                    best.append((end, concept))
        if not best:
            i += 1
            continue
        longest = max(end for end, _ in best)
        seen: set[tuple[str, str]] = set()
        for end, concept in best:
            if end == longest and (concept.vocabulary, concept.code) not in seen:
                seen.add((concept.vocabulary, concept.code))
                found.append(ConceptMatch(concept, i, end))
        i = longest
    return found


def concept(vocabulary: str, code: str) -> Concept:
    for c in CONCEPTS:
        if c.vocabulary == vocabulary and c.code == code:
            return c
    raise KeyError((vocabulary, code))


def expansion(concept: Concept, languages: Iterable[str] = LANGUAGES) -> dict[str, list[Phrase]]:
    """The concept's names in each language as phrases of index forms: what a record written
    in that language says when it names the concept (to match, ranked below the words the
    query typed)."""
    return {
        language: [
            tuple(frozenset(forms) for forms in analyse_words(name, language))
            for name in concept.names(language)
        ]
        for language in languages
    }


def by_facet() -> dict[str, list[Concept]]:
    """The concepts filed as each facet's values."""
    out: dict[str, list[Concept]] = {}
    for c in CONCEPTS:
        if c.facet is not None:
            out.setdefault(c.facet, []).append(c)
    return out
