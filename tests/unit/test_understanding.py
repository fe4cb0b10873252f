"""Question understanding: crops, kinds, zones and uncovered topics in az/en/ru (with case
endings), and follow-ups that inherit what they leave out."""

from __future__ import annotations

from dataclasses import replace

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from alim.routing import SemanticRouter
from alim.understanding import (
    Understanding,
    answer_cues,
    bundled_lexicon,
    foreign_topics,
    labelled_for_others,
    own_topics,
    topics_read,
    understand,
    without_crops,
)
from graphs.evidence import entity_first
from graphs.nodes.retrieve import search_query
from graphs.state import State


@pytest.mark.parametrize(
    ("text", "crop", "kind"),
    [
        ("Payızlıq buğdanı nə vaxt səpmək lazımdır?", "wheat", "timing"),
        ("Когда сажать картофель в Ленкорани?", "potato", "timing"),
        ("How much nitrogen does maize need?", "maize", "amount"),
        ("Pomidorun yarpaqları saralır, nə çatmır?", "tomato", "diagnosis"),
        ("При какой температуре хранить яблоки?", "apple", "temperature"),
    ],
)
def test_crop_and_kind_are_found_through_case_endings(text: str, crop: str, kind: str) -> None:
    u = understand(text)
    assert crop in u.crops
    assert kind in u.kinds
    assert not u.uncovered


@pytest.mark.parametrize(
    ("text", "crop"),
    [
        ("Fındığın yarpaqları saralır", "hazelnut"),
        ("Pambığı nə vaxt suvarım?", "cotton"),
        ("Əriyin çiçəkləri dondu", "stone_fruit"),
        ("Tənəyi necə budayım?", "grape"),
    ],
)
def test_a_crop_is_found_when_its_final_q_or_k_softens(text: str, crop: str) -> None:
    assert crop in understand(text).crops


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("İnəyim yem yemir, nə edim?", "livestock"),
        ("Traktorun mühərriki tüstü verir", "machinery"),
        ("How do I get a farm loan from the bank?", "finance"),
        ("Arıların pətəyi necə qışlamalıdır?", "bees"),
        # Prices, subsidies, insurance, loans, legal questions: uncovered even about a crop.
        ("Какая сейчас цена на пшеницу?", "prices"),
        ("Bu il fındığın kiloqramının qiyməti nədir?", "prices"),
        ("İcarəyə götürdüyüm sahədə pomidoru nə vaxt əkim?", None),
        ("How do I insure my cotton against hail?", "insurance"),
        ("What documents do I need to export hazelnuts?", "legal"),
        # Livestock, machinery, markets next to a crop are growing questions (alfalfa for cows,
        # harvesting tomatoes for the market); 'стоит' is also 'is it worth'.
        ("Yoncanı inəklər üçün nə vaxt biçim?", None),
        ("When should I pick tomatoes for the market?", None),
        ("Когда стоит сажать картофель?", None),
        # 'qiymətli' is valuable, 'qiymətləndirmək' to assess; 'стоит ли' is 'is it worth'.
        ("Torpağın münbitliyini necə qiymətləndirim?", None),
        ("Стоит ли поливать перед заморозками?", None),
        ("Сколько стоит тонна удобрения?", "prices"),
        # Bees while spraying is pesticide safety (covered); a beetle, arid or lean ('arıq')
        # soil are no bees.
        ("Can I spray an insecticide while bees are foraging?", None),
        ("Arılar uçanda bağı dərmanlamaq olar?", None),
        ("When is the best time to spray Colorado beetle?", None),
        ("What can I grow on arid soil?", None),
        ("Arıq torpağa nə verim?", None),
        ("Arıçılığa necə başlayım?", "bees"),
        # Russian verbs take prefixes, nouns their plural and case forms.
        ("Как застраховать урожай хлопка от града?", "insurance"),
        ("Как правильно кастрировать бычков?", "livestock"),
        ("Чем кормить овец зимой?", "livestock"),
        # Poultry and draught animals besides hens and cattle; silkworms, mushrooms, snails.
        ("Гусята плохо растут, чем подкормить?", "livestock"),
        ("Eşşəyin ayağı axsayır, nə edim?", "livestock"),
        ("How warm should the brooder be for turkey poults?", "livestock"),
        ("Ipək qurdunu necə bəsləyim?", "other_enterprises"),
        ("Как выращивать вешенки в подвале?", "other_enterprises"),
        # ...but a fruit's "fleece" cover, a sprout ('cücərti') and fungal disease are crops.
        ("Pomidor toxumu neçə günə cücərir?", None),
        ("Should I cover young apricots with fleece on frosty nights?", None),
        ("Как бороться с грибковыми болезнями винограда?", None),
        # A loan is no verb that takes time ('займёт'), nor is a bank a jar ('банки').
        ("Нужен займ на покупку семян", "finance"),
        ("Сколько это займёт по времени?", None),
        ("Как закрыть банки с огурцами на зиму?", "food_processing"),
        ("Recipe for pickling green tomatoes?", "food_processing"),
        # Pain is a person's (or an animal's); a plant falls ill.
        ("Belim ağrıyır, hansı məlhəm yaxşıdır?", "human_health"),
        ("Болит спина после прополки", "human_health"),
        ("Чем болеют помидоры в теплице?", None),
        ("Will frost hurt my apricots?", None),
        ("Hansı dərmanı içmək olar, başım gicəllənir?", "human_health"),
        ("Dərmanı suyun içində həll edim?", None),
        ("Will the state compensate me for the frost damage?", "subsidies"),
        # Tulip bulbs are no onions; an itchy rash is a person's, spots on leaves a plant's.
        ("Когда сажать луковицы тюльпанов?", "other_crops"),
        ("My hands get an itchy rash after picking, what cream?", "human_health"),
        ("Rash spots on cucumber leaves", None),
        ("Как приготовить ткемали из алычи?", "food_processing"),
        # No article tells what a field or a tree yields, nor what a picker picks in a day...
        ("Gədəbəydə kartofdan hektara neçə ton məhsul gözləmək olar?", "yields"),
        ("how much lint comes out of a tonne of seed cotton at the gin?", "yields"),
        ("Сколько центнеров пшеницы с гектара собирают на богаре?", "yields"),
        ("bir alma ağacından neçə kilo meyvə yığılır?", "yields"),
        ("сколько хлопка-сырца вручную собирает один сборщик за день?", "labour"),
        ("how many pickers do I need for 2 hectares of tea?", "labour"),
        # ...but how much to put on a hectare, or how to raise the yield, they tell.
        ("Hektara neçə ton peyin verim?", None),
        ("по расчету надо дать 30 мм воды, сколько это кубометров с гектара?", None),
        ("Как повысить урожайность пшеницы?", None),
        ("how much water per tree in July?", None),
        # Fish in a rice field, a water quarrel, a desalting plant, a cabbage's own seed...
        ("can i let carp fingerlings into my rice checks and grow fish with the rice?", "fish"),
        ("сосед перекрывает арык, вода до участка не доходит, куда жаловаться?", "legal"),
        ("quyu suyum duzludur, damcı üçün əks osmos qurğusu sərfəlidirmi?", "machinery"),
        ("öz kələmimdən toxum götürmək istəyirəm, necə saxlayım?", "seed_saving"),
        # ...but watering a crop from a pond is the crop's watering.
        ("поливаю помидоры из пруда, можно?", None),
    ],
)
def test_uncovered_topics_are_recognised(text: str, topic: str | None) -> None:
    u = understand(text)
    assert (topic in u.uncovered) if topic else not u.uncovered


def test_an_elliptical_follow_up_inherits_the_kind_and_keeps_its_own_crop() -> None:
    first = understand("Payızlıq buğdanı nə vaxt səpmək lazımdır?")
    follow = understand("Bəs arpanı?").following(first, "Bəs arpanı?")
    assert follow.followup
    assert follow.crops == ("barley",)
    assert follow.kinds == ("timing",)
    assert follow.inherited == ("kinds",)


def test_a_zone_follow_up_inherits_crop_and_kind() -> None:
    first = understand("Когда сажать картофель?")
    follow = understand("А в горах?").following(first, "А в горах?")
    assert (follow.crops, follow.kinds, follow.zone) == (("potato",), ("timing",), "mountain")


def test_a_new_complete_question_is_not_a_follow_up() -> None:
    first = understand("Когда сажать картофель?")
    text = "How should I store apples in winter at home?"
    assert not understand(text).following(first, text).followup


def test_understanding_survives_the_checkpoint_as_a_dict() -> None:
    u = understand("When to plant tomatoes in the foothills?")
    assert Understanding.from_dict(u.as_dict()) == u
    assert u.zone == "foothill"


def test_identity_questions_are_smalltalk_not_a_hand_off() -> None:
    for text in (
        "Hello, who am I talking to?",
        "Salam, sən kimsən?",
        "Кто ты?",
        # Who made it: the nearest exemplar of "ALİM nədir, səni kim yaradıb?" was a laptop's.
        "ALİM nədir, səni kim yaradıb?",
        "who made you?",
        "А кто тебя создал?",
    ):
        decision = SemanticRouter.rules(text)
        assert decision is not None and decision.route == "smalltalk"
    asked = SemanticRouter.rules("Mənə aqronomla danışmaq lazımdır")
    assert asked is not None and asked.route == "human"


def test_a_follow_up_is_searched_with_the_previous_question() -> None:
    first, second = "Payızlıq buğdanı nə vaxt səpmək lazımdır?", "Bəs arpanı?"
    u = understand(second).following(understand(first), second)
    state: State = {
        "messages": [HumanMessage(first), AIMessage("..."), HumanMessage(second)],
        "understanding": u.as_dict(),
    }
    query = search_query(state)
    assert "arpan" in query and "nə vaxt" in query
    assert "buğda" not in query  # the follow-up names its own crop
    assert without_crops("Payızlıq buğdanı səpin") == "Payızlıq səpin"


def test_chunks_of_the_question_s_crop_come_first() -> None:
    def chunk(group: str) -> dict[str, object]:
        return {"group": group, "id": group}

    chunks = [chunk("sowing-calendar"), chunk("pests-common"), chunk("barley")]
    ranked = entity_first(chunks, ("barley",), 2)  # type: ignore[arg-type]
    assert [c["group"] for c in ranked] == ["barley", "sowing-calendar"]


def test_another_crop_s_article_naming_the_same_place_is_no_answer_first() -> None:
    # "yonca əkmək istəyirəm Bərdədə": the rice article names Bərdə too.
    chunks = [
        {"group": "rice", "id": "rice", "named": True},
        {"group": "sowing-calendar", "id": "calendar", "named": True},
        {"group": "alfalfa-forage", "id": "alfalfa"},
    ]
    u = understand("yonca əkmək istəyirəm Bərdədə")
    ranked = entity_first(chunks, u.groups, 3, foreign_topics(u))  # type: ignore[arg-type]
    assert [c["id"] for c in ranked] == ["calendar", "alfalfa", "rice"]
    # Without a crop nothing is foreign: what names the place comes first.
    ranked = entity_first(chunks, (), 3)  # type: ignore[arg-type]
    assert [c["id"] for c in ranked] == ["rice", "calendar", "alfalfa"]


def test_a_when_to_sow_question_also_reads_the_sowing_calendar() -> None:
    first = understand("Payızlıq buğdanı nə vaxt səpmək lazımdır?")
    assert first.groups == ("wheat", "sowing-calendar")
    assert topics_read(first) == ("sowing-calendar",)
    # The follow-up names its crop and inherits the kind and the stage: calendar again.
    follow = understand("Bəs arpanı?").following(first, "Bəs arpanı?")
    assert follow.groups == ("barley", "sowing-calendar")
    # Storage and harvest questions read the harvest and storage article.
    assert "harvest-storage" in understand("Kartofu qışda necə saxlayım?").groups
    # A question of another kind reads only its crop's topics.
    assert understand("Buğdada pas xəstəliyi var").groups == ("wheat",)


@pytest.mark.parametrize(
    "text",
    [
        "what wind speed is too strong for spraying",
        "Выше какой температуры лучше не опрыскивать?",
        "Son çiləmədən nə qədər sonra məhsulu yığmaq olar?",
        "Fungisidi yağışdan əvvəl vermək olar?",
    ],
)
def test_a_spraying_question_reads_the_pesticide_safety_topic_whatever_the_crop(
    text: str,
) -> None:
    u = understand(text)
    assert u.practices == ("spraying",)
    assert "safe-pesticide-use" in topics_read(u)


@pytest.mark.parametrize(
    ("text", "crop"),
    [
        ("Narın yetişdiyini necə bilim?", "pomegranate"),
        ("Narı nə vaxt yığmaq lazımdır?", "pomegranate"),
        ("Какая кислотность почвы нужна для чая?", "tea"),
    ],
)
def test_a_whole_word_crop_is_found_in_its_case_forms(text: str, crop: str) -> None:
    assert understand(text).crops == (crop,)


def test_how_is_not_how_many_once_folded() -> None:
    # 'necə' (how) and 'neçə' (how many) fold to one word; only 'neçə' with a unit is an amount.
    assert "amount" not in understand("Üzümü qışa necə hazırlayım?").kinds
    assert "amount" in understand("Hektara neçə kq toxum lazımdır?").kinds
    assert "amount" not in understand("Narıncı ləkələr nədir?").kinds
    assert understand("Narıncı ləkələr nədir?").crops == ()


def test_an_answer_cue_matches_what_the_kind_of_question_asks_for() -> None:
    timing, sowing = answer_cues(understand("Когда сажать картофель?"))
    assert timing.search("Сажайте в апреле, когда почва прогреется.")
    # The sentence about the question's stage: planting, not harvesting in September.
    assert sowing.search("Сажайте в апреле.") and not sowing.search("Убирайте в сентябре.")
    *_, harvest = answer_cues(understand("When should I harvest my onions?"))
    assert harvest.search("Lift when 50–80% of the tops have fallen over.")
    assert not harvest.search("Onion from seed: lowland February–March.")
    (amount,) = answer_cues(understand("Buğdaya nə qədər azot verim?"))
    assert amount.search("hektara 90–120 kq azot") and not amount.search("azotu yazda verin")
    # A how-to answer is the sentence with the figures to act on.
    howto, _planting = answer_cues(understand("How do I plant garlic?"))
    assert howto.search("Plant cloves 4–5 cm deep.")
    # Spacing: the sentence with the planting pattern, not any figure.
    cues = answer_cues(understand("Ağacların arası nə qədər olsun?"))
    spacing = cues[-1]
    assert spacing.search("Əkin sxemi 5–6 m × 4–5 m.") and not spacing.search("1–2 həftə saxlanır.")


@pytest.mark.parametrize(
    ("first", "second", "topic"),
    [
        # Another crop, same subject: the nitrogen rate of tomatoes is in the fertiliser article.
        ("Pambığa hektara nə qədər azot lazımdır?", "Bəs pomidora?", "fertilisation-npk"),
        ("Pomidor duzlu torpağa nə qədər dözür?", "Bəs yonca?", "soil-salinity-kur-araz"),
        # No crop, no subject of its own: still about lime.
        (
            "Turş torpağa hektara nə qədər əhəng vermək lazımdır?",
            "Nə vaxt səpim?",
            "soil-ph-organic-matter",
        ),
        ("How much shade should nets give in a heat wave?", "and mulch too?", "heat-protection"),
        ("Сколько азота вносить под хлопок?", "А под томаты?", "fertilisation-npk"),
    ],
)
def test_a_follow_up_keeps_the_subject_of_the_conversation(
    first: str, second: str, topic: str
) -> None:
    follow = understand(second).following(understand(first), second)
    assert follow.followup
    assert follow.groups[0] == topic
    assert topic in topics_read(follow)


def test_a_question_s_own_subject_is_read_after_its_crop_s_topic() -> None:
    # Tea's soil pH is in the tea article, which comes first; the soil article is read too.
    u = understand("Какая кислотность почвы нужна для чая?")
    assert u.subjects == ("soil_acidity_organic",)
    assert u.groups == ("tea",)
    assert "soil-ph-organic-matter" in topics_read(u)
    # A new question that names its crop and kind is not a follow-up of a subject.
    first = understand("Pambığa hektara nə qədər azot lazımdır?")
    text = "Pomidoru nə vaxt əkim?"
    assert not understand(text).following(first, text).followup


@pytest.mark.parametrize(
    "text",
    [
        "At what count per square metre should I spray?",  # "at" is not the Azerbaijani horse
        "My cucumber plants wilted suddenly after watering",  # "sudden" is not "süd" (milk)
        "Is it safe to combine fertilisers in one tank?",
        "Weeds in my lawn near the orchard, what can I do?",
        "Какой курс обработок нужен винограду?",
        # "почём" asks a price, "почему" why: before, every Russian "why" question about a
        # crop was taken for a price question and handed to an agronomist.
        "Почему гранаты трескаются прямо на дереве?",
        "Почему в Сальяне поле засоляется?",
        # Words of the articles that began with an uncovered topic's term: ladybirds are no
        # cows, honeydew no honey, cross-pollination ('çarpaz') no carp, male flowers no male
        # animal, transplanting ('keçirin') no goat, Sudan grass no court.
        "Божьих коровок на листьях много, опрыскивать не надо?",
        "What is the sticky honeydew on my leaves?",
        "Çarpaz tozlanma üçün yanına nə əkim?",
        "Erkək çiçəklər tökülür, niyə?",
        "Neçə yarpaqda stəkanlara keçirim?",
        "Когда косить суданскую траву?",
    ],
)
def test_common_words_in_another_language_do_not_make_a_question_uncovered(text: str) -> None:
    assert understand(text).uncovered == ()


def test_a_marked_short_follow_up_is_one_even_when_nothing_is_missing() -> None:
    # Both name a melon crop; the first names no kind the lexicon knows: "Bəs" says it goes on.
    first = understand("Qarpızı hansı üsulla əkim?")
    follow = understand("Bəs qovunu?").following(first, "Bəs qovunu?")
    assert follow.followup


def test_a_follow_up_reads_the_previous_answer_s_topic_unless_it_was_the_crop_s_own() -> None:
    first = replace(
        understand("Which beneficial insects can I release against whitefly?"),
        topic="greenhouse-vegetables",
    )
    follow = understand("And against thrips?").following(first, "And against thrips?")
    assert follow.groups[0] == "greenhouse-vegetables"
    assert topics_read(follow)[0] == "greenhouse-vegetables"
    assert follow.topic is None  # this turn's own is set by its retrieval
    # The wheat article led the wheat question: "and barley?" reads the barley article.
    wheat = replace(understand("How deep do I sow wheat?"), topic="wheat")
    barley = understand("and barley?").following(wheat, "and barley?")
    assert barley.kept_topic is None
    assert barley.groups[0] == "barley"


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        (
            "На солончаковом поле всходы гибнут на гребнях. Куда класть семена?",
            "soil-salinity-kur-araz",
        ),
        ("Biçindən sonra küləşi yandırmaq olar?", "soil-ph-organic-matter"),
    ],
)
def test_a_question_naming_no_crop_reads_the_topic_of_its_subject(text: str, topic: str) -> None:
    u = understand(text)
    assert u.crops == ()
    assert u.groups[0] == topic
    assert topic in topics_read(u)


def test_a_longer_follow_up_that_refers_back_with_a_pronoun_keeps_the_crop() -> None:
    first = understand("When should I pick my figs?")
    text = "how long do fresh ones keep in a cold store?"
    follow = understand(text).following(first, text)
    assert follow.followup and follow.crops == ("fig_olive",)
    # Without the pronoun, a long question about a subject of its own is a question of its own.
    text = "how do I wash the salt out of my soil before the next planting?"
    assert not understand(text).following(first, text).followup


@pytest.mark.parametrize(
    ("first", "text", "crop"),
    [
        ("how deep should I sow grain maize?", "how often does it need water in july?", "maize"),
        ("Когда сажать лук-севок?", "а как часто его поливать летом в жару?", "onion"),
    ],
)
def test_a_pronoun_before_any_subject_of_its_own_refers_back_to_the_crop(
    first: str, text: str, crop: str
) -> None:
    follow = understand(text).following(understand(first), text)
    assert follow.followup and follow.crops == (crop,)


def test_a_pronoun_after_a_subject_of_its_own_refers_to_that_subject() -> None:
    first, text = (
        "Когда сеять пшеницу?",
        "Что такое капельное орошение и сколько оно экономит воды?",
    )
    assert not understand(text).following(understand(first), text).followup


def test_a_long_turn_naming_nothing_of_its_own_goes_on_about_the_crop() -> None:
    first = understand("When do I harvest rice?")
    text = "at what moisture should the combine go in?"
    follow = understand(text).following(first, text)
    assert follow.followup and follow.crops == ("rice",)


def test_a_word_for_any_grain_names_wheat_only_when_no_other_crop_is_named() -> None:
    assert understand("how deep should I sow grain maize?").crops == ("maize",)
    assert understand("Как понять что кукуруза на зерно созрела?").crops == ("maize",)
    assert understand("зерно сыроватое, как просушить если нет сушилки?").crops == ("wheat",)


def test_hay_is_the_forage_article_s_unless_a_crop_is_named() -> None:
    # The price of a bale was placed with the everyday requests, naming no crop.
    assert understand("whats the going price for a bale of hay in Sheki").crops == ("alfalfa",)
    assert understand("сколько стоит сено?").crops == ("alfalfa",)
    assert understand("when do I cut barley for hay?").crops == ("barley",)
    assert understand("hayır, bilmirəm").crops == ()  # "no", not hay
    # Nor when it names a crop no article covers: green fodder from rye is a rye question.
    rye = understand("озимую рожь на зелёный корм когда сеять?")
    assert rye.crops == () and "other_crops" in rye.uncovered


def test_a_greenhouse_with_no_crop_reads_the_greenhouse_article() -> None:
    u = understand("istixanada torpaqda duz yığılıb, nə edim?")
    assert u.groups[0] == "greenhouse-vegetables"
    # With a crop, the crop's own article steers; the greenhouse one is read after it.
    u = understand("When do I plant tomatoes in an unheated greenhouse?")
    assert u.groups[0] == "tomatoes" and "greenhouse-vegetables" in topics_read(u)


def test_a_cotton_boll_is_no_walnut() -> None:
    # 'qoza' (a boll) begins like 'qoz' (a walnut); the walnut's case forms are spelt out.
    text = "Defoliantı nə vaxt vurum, qozaların neçəsi açılanda?"
    assert understand(text).crops == ("cotton",)
    for text in ("Qozu nə vaxt yığım?", "Qozların qabığı qaralır", "qoz ağacını budayım?"):
        assert understand(text).crops == ("nuts",)


@pytest.mark.parametrize(
    "text",
    [
        "When do I spray the leaf-drop chemical on cotton? Bolls are starting to crack open.",
        "qozun yaşıl qabığı çatlayanda yığım?",
        "у миндаля околоплодник трескается, пора собирать?",
    ],
)
def test_a_boll_or_hull_cracking_open_when_ripe_is_no_fruit_cracking(text: str) -> None:
    # A sign to defoliate or pick: the cotton and nut articles do not tell of cracked fruit.
    assert "cracking" not in understand(text).kinds


def test_fruit_splitting_on_the_tree_is_a_cracking_question() -> None:
    assert "cracking" in understand("my quince fruits split open on the tree, why?").kinds


def test_in_a_conversation_about_a_crop_harvesting_with_a_combine_is_covered() -> None:
    first = understand("Как понять что кукуруза на зерно созрела?")
    text = "а при какой влажности убирать комбайном?"
    assert understand(text).uncovered == ("machinery",)  # alone, a question about machines
    follow = understand(text).following(first, text)
    assert not follow.uncovered and follow.crops == ("maize",)
    # The machine itself stays uncovered, crop or not.
    text = "Traktorun mühərriki qızır, nə edim?"
    assert understand(text).following(first, text).uncovered == ("machinery",)


@pytest.mark.parametrize(
    "text",
    [
        "можно остатки ядохимиката перелить в бутылку из под лимонада?",
        "Limonad şüşəsində dərman saxlamaq olar?",
        "Есть риск заморозков этой ночью?",  # a risk is not rice
        "Можно слить остатки раствора в арык?",  # pouring off is not a plum
    ],
)
def test_words_that_begin_like_a_crop_are_not_that_crop(text: str) -> None:
    assert understand(text).crops == ()
    assert understand("Лимоны зимой в теплице: какая температура?").crops == ("citrus",)
    assert understand("Когда сеять рис?").crops == ("rice",)
    assert understand("Когда обрезать сливу?").crops == ("stone_fruit",)


def test_a_timing_question_in_a_zone_takes_the_sentence_naming_that_zone() -> None:
    u = understand("Qarğıdalını nə vaxt əkim?", zone="foothill")
    cues = answer_cues(u)
    per_zone = "dağətəyi – aprelin sonu–may; dağlıq zona – may"
    assert any(c.search(per_zone) for c in cues)
    assert not any(c.search("Sahəni payız şaxtasından əvvəl biçin.") for c in cues[1:])
    # A question of another kind, or with no zone, gets no zone cue.
    assert len(answer_cues(understand("Qarğıdalını nə vaxt əkim?"))) == len(cues) - 1


def test_questions_about_what_the_assistant_can_help_with_are_smalltalk() -> None:
    for text in (
        "Bu proqram mənə hansı suallarda kömək edə bilər?",
        "What kind of questions can you answer?",
        "Чем вы можете помочь?",
    ):
        decision = SemanticRouter.rules(text)
        assert decision is not None and decision.route == "smalltalk", text


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Как зарегистрировать пасеку, если ульев больше двадцати?", "bees"),
        ("How do I get the land boundaries officially registered?", "legal"),
        ("Какие документы нужны, чтобы зарегистрировать фермерское хозяйство?", "legal"),
        ("How do I treat varroa mites in my beehives?", "bees"),
        ("Почём сейчас пшеница на рынке?", "prices"),
    ],
)
def test_registering_land_or_an_apiary_is_uncovered(text: str, topic: str) -> None:
    assert topic in understand(text).uncovered


def test_the_articles_of_crops_not_named_are_foreign() -> None:
    onion = understand("Soğanın toxumundan hektara nə qədər lazımdır?")
    foreign = foreign_topics(onion)
    assert "wheat" in foreign and "apples" in foreign
    assert "onion-garlic" not in foreign
    # Topics several crops share are general: the seedlings article answers apple seedlings.
    assert "seedlings-nursery" not in foreign and "greenhouse-vegetables" not in foreign
    assert foreign_topics(understand("Torpağın turşuluğunu necə yoxlayım?")) == frozenset()


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Dərmanı quyunun yanında qarışdırıram, olar?", "safe-pesticide-use"),
        ("Можно хранить остатки химиката в сарае?", "safe-pesticide-use"),
    ],
)
def test_pesticide_words_read_the_safety_topic(text: str, topic: str) -> None:
    assert topic in topics_read(understand(text))


def test_which_time_asks_when_and_mowing_is_harvest() -> None:
    u = understand("Silosluq qarğıdalını hansı vaxtda biçək?")
    assert "timing" in u.kinds and "harvest" in u.stages


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("How often should I water young apricots?", "amount"),
        ("Как часто поливать молодой абрикос?", "amount"),
        ("Cavan əriyi neçə gündən bir suvarım?", "amount"),
        ("Почему у перца желтеют нижние листья?", "diagnosis"),
        ("Niyə narın meyvələri çatlayır?", "diagnosis"),
    ],
)
def test_how_often_asks_an_amount_and_why_a_diagnosis(text: str, kind: str) -> None:
    assert kind in understand(text).kinds


@pytest.mark.parametrize(
    ("question", "answer", "other"),
    [
        (
            "How often should I spray grapes for downy mildew?",
            "Use copper-based fungicides, repeated every 10–14 days in wet periods.",
            "Use 2–3 kg of copper fungicide per hectare.",
        ),
        (
            "Как часто опрыскивать виноград от милдью?",
            "В дождливые периоды повторяйте каждые 10–14 дней.",
            "Расход 2–3 кг препарата на гектар.",
        ),
        (
            "Üzümü mildiuya qarşı neçə gündən bir çiləyim?",
            "Yağışlı dövrlərdə 10–14 gündən bir təkrarlayın.",
            "Hektara 2–3 kq preparat işlədin.",
        ),
    ],
)
def test_how_often_is_answered_by_an_interval_not_by_any_figure(
    question: str, answer: str, other: str
) -> None:
    u = understand(question)
    assert "frequency" in u.kinds
    interval = bundled_lexicon().cues["frequency"]
    assert interval in answer_cues(u)
    assert interval.search(answer) and not interval.search(other)


@pytest.mark.parametrize(
    "stand",
    [
        "Stand: 60–75 thousand plants/ha for irrigated grain.",
        "Густота: на орошаемом зерновом посеве 60–75 тыс. растений/га.",
        "Bitki sıxlığı: suvarılan dənlik sahədə hektara 60–75 min.",
    ],
)
def test_a_plant_density_is_a_spacing_answer_in_every_language(stand: str) -> None:
    spacing = bundled_lexicon().cues["spacing"]
    assert "spacing" in understand("What plant density should I aim for in maize?").kinds
    assert spacing.search(stand)


def test_a_cuttings_length_asks_a_figure() -> None:
    for question in (
        "Əncir qələmlərini nə uzunluqda kəsim?",
        "Какой длины резать черенки инжира?",
        "What length should fig cuttings be?",
    ):
        assert "amount" in understand(question).kinds, question


def test_colloquial_russian_spraying_reads_the_safety_topic() -> None:
    assert "safe-pesticide-use" in topics_read(understand("Чем побрызгать помидоры от тли?"))


def test_a_pest_by_name_is_read_where_the_crop_s_article_does_not_name_it() -> None:
    # The greenhouse article says nothing of aphids: the common pests article is read too.
    u = understand("Как бороться с тлёй на огурцах в теплице?")
    assert "aphids" in u.subjects
    assert "pests-common" in topics_read(u, lambda group, pattern: False)
    # The apple article names the codling moth: it answers, the general article is not read.
    u = understand("Almada meyvəyeyən var, tələni nə vaxt asım?")
    assert "codling_moth" in u.subjects
    assert "pests-common" not in topics_read(u, lambda group, pattern: group == "apples")
    # Without a crop the common article is read, but does not steer retrieval: the articles
    # of the pest's crops (the apple one for the codling moth) are still found and may lead.
    u = understand("Сколько феромонных ловушек от плодожорки вешать на гектар сада?")
    assert "pests-common" not in u.groups
    assert "pests-common" in topics_read(u, lambda group, pattern: False)


@pytest.mark.parametrize(
    ("text", "named", "neighbour"),
    [
        ("Как бороться с тлёй?", "Тля: колонии на молодых побегах.", "Паутинный клещ: паутина."),
        ("Kolorado böcəyinə qarşı nə edim?", "Kolorado böcəyi: əllə yığın.", "Trips: tələ."),
        ("What stops powdery mildew?", "Powdery mildew: sulphur.", "Rusts: resistant varieties."),
    ],
)
def test_the_sentence_naming_the_pest_asked_about_holds_a_cue(
    text: str, named: str, neighbour: str
) -> None:
    # "тлёй" and "Тля" share no stem: the lexicon's terms say both name the aphid.
    cues = answer_cues(understand(text))
    assert any(c.search(named) for c in cues)
    assert not any(c.search(neighbour) for c in cues)


def test_a_pest_by_name_kept_by_a_follow_up_does_not_steer_retrieval() -> None:
    first, text = understand("Тля на огурцах, что делать?"), "А на помидорах?"
    follow = understand(text).following(first, text)
    assert follow.kept_subjects == ("aphids",)
    assert follow.groups == ("tomatoes", "greenhouse-vegetables")  # the crop's topics only


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        # A crop no article covers, alone or as seedlings, is the knowledge base's blind spot.
        ("When do I plant strawberry runners?", "other_crops"),
        ("Moruğu nə vaxt budamaq lazımdır?", "other_crops"),
        ("Qulupnay şitilini nə vaxt əkim?", "other_crops"),
        ("Как подкормить клубнику весной?", "other_crops"),
        # ...but not next to a crop one does cover, nor as the host of a pest described by name.
        ("Can I plant strawberries between young apple trees?", None),
        ("Тля на клубнике, чем обработать?", None),
        # A pumpkin is uncovered; cucurbits ('тыквенные') are the melon and cucumber family.
        ("Когда сажать тыкву?", "other_crops"),
        ("Когда сеять тыквенные на рассаду?", None),
        # Making jam, cheese or wine is no growing question, even of a crop the base covers.
        ("Üzümdən evdə şərab necə hazırlanır?", "food_processing"),
        ("How do I make sheep cheese at home?", "food_processing"),
        ("Как сварить варенье из айвы?", "food_processing"),
        # A person's health is for a doctor, unless it follows spraying (pesticide safety).
        ("Qonşunu ilan sancıb, nə edək?", "human_health"),
        ("I got a headache after spraying the orchard, what should I do?", None),
        # A medicine is not spraying: varroa treatment and a farmer's pills stay uncovered, the
        # verb for spraying ('dərmanlamaq') does not.
        ("Arılarda varroa var, hansı dərmanı verim?", "bees"),
        ("Başım ağrıyır, hansı dərmanı içim?", "human_health"),
        ("Bağı dərmanlayandan sonra başım ağrıyır, nə edim?", None),
        # Treating the bees' own mites is beekeeping, whatever the verb.
        ("arı ailələrində varroa gənəsi çoxalıb, nə ilə dərmanlayım?", "bees"),
        # Juice and a price per tonne are no growing questions, even of a crop the base covers.
        ("how do i make pomegranate juice at home?", "food_processing"),
        ("Сколько сейчас стоит тонна пшеницы?", "prices"),
        # ç and ş typed as 'ch' and 'sh' on a phone; 'по чём' in two words.
        ("bu il Qubada almanin kilosu topdan necheyedi?", "prices"),
        ("по чём сейчас принимают хлопок-сырец?", "prices"),
        # The base names no brand, of a machine or of a product for a crop.
        ("which brand of drip tape is best to buy in Baku?", "brands"),
        ("Какой фирмы фунгицид лучше для винограда?", "brands"),
        ("cut my hand on a rusty sickle, do i need a tetanus shot?", "human_health"),
        # Cooking a crop down at home, a cold store's compressor, export papers, a factory's
        # price: uncovered with a crop named too; making Bordeaux mixture is spraying.
        ("nar sirəsini evdə necə qaynadım ki, qışda xarab olmasın?", "food_processing"),
        ("how do I make tomato paste at home in jars?", "food_processing"),
        ("A cold store for 50 t of apples: what insulation panels and compressor?", "buildings"),
        ("Какие документы нужны, чтобы отправить фуру хурмы в Россию?", "legal"),
        ("сколько платят за кило зелёного чайного листа на фабрике?", "prices"),
        ("Когда варить бордоскую смесь для винограда?", None),
        ("bu il fındığın kilosu neçəyə alınır Zaqatalada?", "prices"),
        ("The land plot is still in my late father's name: what papers to transfer it?", "legal"),
        ("Сколько примерно стоит пробурить скважину на 80 метров?", "buildings"),
        # 'neçəyə qədər' is up to how much: how much heat barley stands, no price.
        ("Bəs arpa neçəyə qədər dözür?", None),
        # Bulbs ('soğanaq') are no onions: tulip bulbs are a crop no article covers.
        ("Lalə soğanaqlarını nə vaxt əkim?", "other_crops"),
        # Geese ('qaz' alone is also gas), solar panels.
        ("Qazlarım yumurtlamır, nə yedirim?", "livestock"),
        ("Is a solar panel on the barn roof worth it?", "energy"),
        # 'almaq' is to take or buy, not an apple: a lost land title is a legal question.
        ("Torpaq kupçası itib, yenisini almaq üçün hara müraciət edim?", "legal"),
    ],
)
def test_crops_no_article_covers_and_life_off_the_field_are_uncovered(
    text: str, topic: str | None
) -> None:
    u = understand(text)
    assert (topic in u.uncovered) if topic else not u.uncovered


def test_a_follow_up_naming_a_crop_no_article_covers_does_not_inherit_the_crop() -> None:
    first, text = understand("Когда обрезать яблоню?"), "А малину?"
    follow = understand(text).following(first, text)
    assert not follow.followup and follow.crops == ()
    assert follow.uncovered == ("other_crops",)
    assert understand("Almanı nə vaxt budayım?").crops == ("apple",)
    assert understand("Subsidiya almaq üçün hara müraciət edim?").crops == ()


@pytest.mark.parametrize(
    ("first", "text", "crop"),
    [
        # A word for any grain in a conversation about maize is the maize.
        (
            "I'm growing grain maize in Zaqatala this year.",
            "What moisture should the grain be at when the combine goes in?",
            "maize",
        ),
        # Spraying is done to the conversation's crop.
        (
            "When do sunn pests come into the wheat fields?",
            "At what count per square metre should I spray?",
            "wheat",
        ),
        # Spraying again after a question on spraying cotton adds nothing of its own.
        (
            "When should I spray defoliant on my cotton?",
            "After spraying, how long until the leaves actually drop off?",
            "cotton",
        ),
    ],
)
def test_a_turn_adding_nothing_of_its_own_goes_on_about_the_crop(
    first: str, text: str, crop: str
) -> None:
    follow = understand(text).following(understand(first), text)
    assert follow.followup and follow.crops == (crop,)


@pytest.mark.parametrize(
    ("first", "text", "kept"),
    [
        ("в Губе ночью заморозок обещают, а сад цветет", "а поливать надо перед этим?", "frost"),
        ("Bu gecə şaxta olacaq, bağ çiçəkdədir", "Bəs ondan əvvəl suvarım?", "frost"),
    ],
)
def test_a_turn_placed_before_or_after_the_last_keeps_its_subject(
    first: str, text: str, kept: str
) -> None:
    follow = understand(text).following(understand(first), text)
    assert follow.followup and follow.kept_subjects == (kept,)
    assert follow.groups[0] == "frost-protection"
    # Without the reference, a new subject is its own: watering alone.
    plain = "а поливать сколько?"
    assert understand(plain).following(understand(first), plain).kept_subjects == ()


@pytest.mark.parametrize(
    ("first", "text", "crop"),
    [
        (
            "What kind of barley should I sow if a brewery buys it?",
            "how much nitrogen for it on rainfed land?",
            "barley",
        ),
        ("Когда сеять ячмень на пиво?", "Сколько азота давать под него на богаре?", "barley"),
    ],
)
def test_a_singular_pronoun_after_for_stands_for_the_crop(first: str, text: str, crop: str) -> None:
    # A subject before a singular pronoun is usually what it stands for ("сколько оно
    # экономит"), but nitrogen is given *for* a crop.
    follow = understand(text).following(understand(first), text)
    assert follow.followup and follow.crops == (crop,)


def test_seedlings_in_a_conversation_about_a_crop_are_that_crops() -> None:
    first = understand("thinking to start rice with transplanting in Lankaran")
    text = "how old should the seedlings be when i move them?"
    follow = understand(text).following(first, text)
    assert follow.followup and follow.crops == ("rice", "seedlings")
    assert follow.groups[:2] == ("rice", "seedlings-nursery")
    # Seedlings of a crop of their own are that crop's: nothing to inherit.
    tomato = understand("Pomidor şitillərini nə vaxt köçürüm?")
    assert tomato.following(first, "Pomidor şitillərini nə vaxt köçürüm?").crops == tomato.crops


def test_a_turn_with_a_subject_new_to_the_conversation_is_its_own_question() -> None:
    first = understand("Когда сажать картофель?")
    text = "Как определить кислотность почвы без лаборатории и чем её исправить?"
    follow = understand(text).following(first, text)
    assert not follow.followup and follow.crops == ()
    assert (
        "soil-ph-organic-matter" in understand("Torpaq analizi üçün nümunəni necə götürüm?").groups
    )


def test_a_watering_question_reads_both_irrigation_articles() -> None:
    # How much water drip saves over furrows is in the drought article, not the schedules.
    u = understand("damci suvarmaya kecsem arxla suvarmadan ne qeder az su gedecek?")
    assert {"irrigation-scheduling", "irrigation-drought"} <= set(topics_read(u))


def test_protective_gear_is_a_spraying_question() -> None:
    # "what kind of gloves should I wear?" while spraying apples: the safe-use article.
    u = understand("what kind of gloves should I wear?")
    assert u.practices == ("spraying",)
    assert "safe-pesticide-use" in topics_read(u)
    assert understand("shaxta olacaq, bağı necə qoruyum?").subjects == ("frost",)


@pytest.mark.parametrize(
    ("sentence", "others"),
    [
        ("**Xiyar, qovun, qarpız:** dibçəkdə, sahəyə köçürmədən 25–30 gün əvvəl.", True),
        ("Cotton: N 120–160; P2O5 90–120; K2O 60–90.", True),
        ("**Çəltik:** tingləri 25–35 günlük köçürün.", False),
        ("Tingləri 4–6 həqiqi yarpaqla köçürün.", False),  # no label: for any crop
        # A label for another crop over a sentence about the asked one.
        ("**Pomidor şitili:** aprelin sonu. Çəltik tingləri isə 25–35 günlük köçürülür.", False),
    ],
)
def test_a_sentence_labelled_for_other_crops_is_no_answer_about_this_one(
    sentence: str, others: bool
) -> None:
    rice = understand("Lənkəranda çəltik tinglərini neçə günlük köçürüm?")
    assert labelled_for_others(sentence, rice) is others
    # A question naming no crop, or only seedlings, has no other crops.
    assert not labelled_for_others(sentence, understand("Tingləri nə vaxt köçürüm?"))


def test_how_many_years_looks_for_a_figure_in_years() -> None:
    u = understand("How many years before I can grow cabbage again in a field with clubroot?")
    assert "years" in u.kinds
    (cue,) = [c for c in answer_cues(u) if c.search("do not plant it there for 3–4 years")]
    assert not cue.search("replace stems older than 20–25 cm")
    assert cue.search("ən azı 3–4 il əkməyin") and cue.search("не сажайте 3–4 года")


def test_shade_nets_are_protection_from_heat() -> None:
    u = understand("what shading % of shade cloth should i get for peppers?")
    assert "heat" in u.subjects and "heat-protection" in topics_read(u)


def test_the_plants_of_a_conversation_about_a_crop_are_that_crop() -> None:
    first = understand("how do i grow rice in Lankaran, from a nursery or sown straight?")
    text = "once the plants start bushing out how deep should the water be?"
    follow = understand(text).following(first, text)
    assert follow.followup and follow.crops[0] == "rice"


def test_how_hot_asks_a_temperature() -> None:
    assert "temperature" in understand("if i have to spray, how hot is too hot outside?").kinds


def test_what_frost_a_crop_takes_asks_for_a_figure_below_zero() -> None:
    first = "хочу посадить маслину в Нахчыване"
    text = "а какой мороз она выдерживает?"
    u = understand(text).following(understand(first), text)
    assert u.crops == ("fig_olive",) and "temperature" in u.kinds
    # Its own kind and subject: the planting of the first turn is no cue for the answer.
    assert u.stages == ()
    held = [c for c in answer_cues(u) if c.search("ветви маслины повреждаются примерно с −7 °C")]
    assert len(held) == 2  # a temperature, and one below zero
    assert not any(c.search("Сажайте весной (март–апрель), после заморозков.") for c in held)
    below = held[-1]
    assert below.search("at about −1…−2 °C") and below.search("at -3 °C")
    assert not below.search("hold at 10-12 °C") and not below.search("0–1 °C")


def test_a_frost_turn_without_a_kind_of_its_own_keeps_the_stage() -> None:
    # Seedlings just planted out, then a frost: the planting stage still says what to save.
    first = "высадил рассаду помидоров под Гянджой неделю назад"
    text = "а на ночь обещают заморозок до нуля, чем спасать?"
    u = understand(text).following(understand(first), text)
    assert u.stages == understand(first).stages != ()


def test_a_month_is_a_whole_word_not_part_of_one() -> None:
    (timing,) = answer_cues(understand("когда снимать урожай мандаринов?"))[:1]
    assert timing.search("октябрь–декабрь") and timing.search("в мае") and timing.search("mayda")
    assert not timing.search("снимайте плоды, достигшие полного размера")


@pytest.mark.parametrize(
    ("question", "sentence", "others"),
    [
        ("когда снимать мандарины?", "**Лимон:** снимайте плоды полного размера.", True),
        ("когда снимать мандарины?", "**Мандарин:** октябрь–декабрь.", False),
        ("when do I lift garlic?", "**Onion sets:** plant in early spring.", True),
        ("when do I lift garlic?", "**Winter garlic:** plant in autumn.", False),
        ("əncirin meyvəsi turşuyur", "**Zeytun vərəmi:** budaqlarda şişlər.", True),
        # A label naming no plant of the crop is for all of them.
        ("когда снимать мандарины?", "**Щитовки:** опрыскивайте маслом.", False),
        # The question names no plant of its crop: every label answers.
        ("когда снимать цитрусовые?", "**Лимон:** снимайте плоды полного размера.", False),
    ],
)
def test_a_label_for_another_plant_of_the_same_crop_is_no_answer(
    question: str, sentence: str, others: bool
) -> None:
    assert labelled_for_others(sentence, understand(question)) is others


def test_a_follow_up_keeps_the_plant_of_the_crop_it_was_about() -> None:
    first = "мандарины в Ленкорани, как за ними ухаживать?"
    text = "а урожай когда снимать?"
    u = understand(text).following(understand(first), text)
    assert u.members == ("citrus:mandarin",)
    assert labelled_for_others("**Фейхоа:** октябрь–ноябрь.", u)
    assert Understanding.from_dict(u.as_dict()) == u


def test_a_crop_s_seedlings_name_one_crop_whose_article_is_read() -> None:
    first = "Lənkəranda çəltiyi tinglikdə yetişdirib sonra sahəyə köçürürük"
    text = "bəs tinglər neçə günlük olanda köçürüm?"
    u = understand(text).following(understand(first), text)
    assert u.crops == ("rice", "seedlings")
    assert own_topics(u) == ("rice",)  # one crop: its article is read whatever retrieval finds
    assert own_topics(understand("how old should seedlings be?")) == ("seedlings-nursery",)


@pytest.mark.parametrize(
    ("text", "crop"),
    [
        ("Сколько ульев на гектар подсолнуха?", "sunflower"),
        ("Луковая муха на грядке", "onion"),
        ("Что сажать после лука?", "onion"),
        ("Посадил лук-севок", "onion"),
    ],
)
def test_russian_names_of_sunflower_and_onion(text: str, crop: str) -> None:
    u = understand(text)
    assert u.crops == (crop,) and not u.uncovered


def test_the_room_kept_between_trees_is_no_storage() -> None:
    u = understand("Ordubadda ərik bağı salıram, ağacların arasını neçə metr saxlayım?")
    assert "spacing" in u.kinds and "storage" not in u.kinds
    assert "harvest-storage" not in u.groups
    assert "storage" in understand("kartofu anbarda necə saxlayım?").kinds


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        # A pest or disease no article names stays uncovered with its crop named: the answer
        # would be the crop's other pests.
        ("Üzüm bağında filloksera tapdıq, nə edək?", "other_pests"),
        ("tomato yellow leaf curl virus in my greenhouse, what now?", "other_pests"),
        ("На пшенице спорынья, зерно можно продавать?", "other_pests"),
        # Certification and a product's legal status are no growing matters.
        ("How do I get my hazelnut orchard organic certification?", "legal"),
        ("Этот гербицид для кукурузы запретили или нет?", "legal"),
        # Nor is the oil a mill or a home press gets out of a crop.
        ("Günəbaxandan evdə yağ sıxmaq olar, bir tondan neçə litr çıxar?", "food_processing"),
        # Cooking, not ripening ('ərik bişib'): pomegranate sauce.
        ("Evdə narşərab necə bişirilir?", "food_processing"),
        ("Ərik bişib, nə vaxt yığım?", None),
        # A crop no article covers, typed as farmers type it.
        ("Okra toxumunu nə vaxt səpim?", "other_crops"),
        ("Kartofun qabığında qotur var, nədən olur?", "other_pests"),
        ("Когда сеять рапс под Шемахой?", "other_crops"),
        # A second list, built from agronomy and checked against every article word.
        ("Gilasda kokkomikoz çıxıb, yarpaqlar tökülür", "other_pests"),
        ("На винограде зудень, листья в войлочных пятнах", "other_pests"),
        ("Can I grow avocado in Astara?", "other_crops"),
        # Hares gnawing a named crop's bark: wild animals are no article's, in any language.
        ("Qubada alma bağımda qışda dovşanlar ağacların qabığını gəmirir", "other_pests"),
        ("зайцы грызут кору яблонь зимой", "other_pests"),
        ("hares chew the bark of my young apple trees", "other_pests"),
        # ...while aphids with their ants, and olives waiting for the press, are still covered.
        ("на айве листья липкие и муравьи ползают, что делать?", None),
        ("Маслины на масло собрали, пресс через неделю. Можно в куче держать?", None),
    ],
)
def test_pests_papers_and_crops_no_article_names_are_uncovered(
    text: str, topic: str | None
) -> None:
    u = understand(text)
    assert (topic in u.uncovered) if topic else not u.uncovered


@pytest.mark.parametrize(
    ("questions", "topic"),
    [
        (
            ("Tütünü nə vaxt əkim?", "Когда сажать табак?", "When should I plant tobacco?"),
            "other_crops",
        ),
        (("Nutu nə vaxt səpim?", "Когда сеять нут?", "When do I sow chickpeas?"), "other_crops"),
        (
            (
                "İtim xəstələnib, nə verim?",
                "Собака заболела, чем лечить?",
                "My dog is sick, what do I give it?",
            ),
            "livestock",
        ),
        (
            (
                "Krevet yetişdirmək istəyirəm, hovuz necə olmalıdır?",
                "Хочу разводить креветок, какой нужен бассейн?",
                "I want to farm shrimp, what pond do I need?",
            ),
            "fish",
        ),
        (
            (
                "Bağa günəş elektrik stansiyası qoymaq istəyirəm",
                "Хочу поставить солнечную электростанцию в саду",
                "I want a solar station for my orchard",
            ),
            "energy",
        ),
    ],
)
def test_what_is_uncovered_in_one_language_is_uncovered_in_all_three(
    questions: tuple[str, str, str], topic: str
) -> None:
    """Most farmers write Azerbaijani: a topic the English and Russian lists name must not be
    answered from the articles when asked in Azerbaijani (tobacco was, with 'табак' listed)."""
    for question in questions:
        assert topic in understand(question).uncovered, question


@pytest.mark.parametrize(
    "question",
    [
        "после картошки через сколько лет можно сажать помидор на том же месте?",
        "Kartofdan sonra eyni sahədə pomidoru neçə ildən sonra əkmək olar?",
        "How many years before tomatoes can follow potatoes in the same field?",
    ],
)
def test_a_crop_after_a_crop_on_the_same_field_reads_the_rotation_rule(question: str) -> None:
    """The rule (one family not on one field for 3–4 years) is in the diseases article, which
    a question naming potatoes and tomatoes would not read otherwise."""
    u = understand(question)
    assert "rotation" in u.subjects
    assert "diseases-common" in topics_read(u)


def test_a_russian_walnut_is_an_orekh_and_a_hazelnut_a_forest_one() -> None:
    assert understand("Когда собирать орехи в Гахе?").members == ("nuts:walnut",)
    assert "hazelnut" in understand("Как сушить лесной орех?").crops


def test_a_salt_crust_and_a_reading_in_ds_m_are_salinity() -> None:
    assert "salinity" in understand("Tarlada ağ duz qaysağı var, nə edim?").subjects
    assert "salinity" in understand("Анализ показал 7 dS/m, это много?").subjects


def test_how_much_seed_looks_for_the_seed_rate() -> None:
    u = understand("Bir hektar yoncaya nə qədər toxum gedir?")
    assert "seed_rate" in u.kinds
    # Of its cues, one holds the seed rate and not a fertiliser's rate, in every language.
    (cue,) = [c for c in answer_cues(u) if not c.search("Hektara 60–90 kq N verin.")]
    assert cue.search("Səpin norması 4–6 kq/ha, dərinlik 1–2 sm")
    assert cue.search("Seed rate about 150–200 kg/ha") and cue.search("Норма высева 4–6 кг/га")


def test_a_rotation_is_no_variety() -> None:
    assert "variety" not in understand("Növbəli əkində buğdadan sonra nə əkim?").kinds
    assert "variety" in understand("Bu sortu nə vaxt budayım?").kinds


def test_a_storage_turn_after_a_fertiliser_one_is_about_the_store() -> None:
    first = understand("Şəkidə armud bağım var, azotu nə vaxt verim?")
    text = "bəs yığandan sonra neçə dərəcədə saxlayım?"
    u = understand(text).following(first, text)
    assert u.followup and u.crops == first.crops
    assert "fertilising" not in u.subjects and "storage" in u.kinds


def test_a_third_turn_searches_with_the_crop_the_first_named() -> None:
    turns = ["Gədəbəydə kartof əkəcəm, toxumluq yumru neçə qram olsun?", "çox sağ ol"]
    text = "bəs neçə sm dərinlikdə basdırım?"
    u = understand(turns[0])
    for turn in (*turns[1:], text):
        u = understand(turn).following(u, turn)
    state: State = {
        "messages": [
            HumanMessage(turns[0]),
            AIMessage("..."),
            HumanMessage(turns[1]),
            AIMessage("..."),
            HumanMessage(text),
        ],
        "understanding": u.as_dict(),
    }
    # The crop, not the seed tubers' weight the first turn asked about.
    assert search_query(state) == f"kartof {turns[1]} {text}"


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        # Words that a crop's, a subject's or a kind's term used to begin: 'istifadə' (use) is
        # no heat, a greenhouse no warmth, 'normal' no rate, ripening ('дозревают') no dose,
        # damage ('поражены') no time to act, 'general' no mite, onion sets ('arpacıq') no
        # barley, low ground ('alçaq') no cherry plum, draining ('сливайте') no plum, knotted
        # roots ('düyünlü') no rice, 'separately' no sowing ('səp').
        ("Hansı gübrədən istifadə edim?", "kinds", "temperature"),
        ("Что посадить в теплице весной?", "kinds", "temperature"),
        ("Is it normal for leaves to curl in the evening?", "kinds", "amount"),
        ("Почему помидоры не дозревают на кусте?", "kinds", "amount"),
        ("Листья поражены, что это за болезнь?", "kinds", "timing"),
        ("Any general advice for a new orchard?", "subjects", "spider_mites"),
        ("Arpacıq soğanı nə vaxt əkim?", "crops", "barley"),
        ("Alçaq yerlərdə şaxta çox olur, nə əkim?", "crops", "stone_fruit"),
        ("Куда сливайте воду из бака после работы?", "crops", "stone_fruit"),
        ("Kökləri düyünlü olub, nədir?", "crops", "rice"),
        ("Should I store apples separately from the potatoes?", "stages", "sowing"),
    ],
)
def test_a_word_a_term_began_is_not_that_term(text: str, field: str, value: str) -> None:
    assert value not in getattr(understand(text), field)


def test_how_deep_looks_for_the_depth() -> None:
    u = understand("Qarpız toxumunu nə dərinliyə basdırım?")
    assert "depth" in u.kinds
    rate = "Seed rate: melon 1–3 kg/ha, watermelon 2–4 kg/ha."
    (cue,) = [c for c in answer_cues(u) if c.search("Depth: melon 3–5 cm") and not c.search(rate)]
    assert cue.search("Глубина заделки: 3–5 см") and cue.search("dərinlik 1–2 sm")


@pytest.mark.parametrize(
    ("text", "uncovered"),
    [
        # An animal's ration, its treatment, how many head a field carries: husbandry, which no
        # article covers, though the feed is a crop they do.
        ("How much maize silage does a beef calf need per day?", True),
        ("Сколько голов овец пустить на люцерну, чтобы не выбили?", True),
        ("İnək yonca yeyib şişib, nə verim?", True),
        # The crop's own risk to animals, and when silage is ready, are in the articles.
        ("Can cows go straight onto a lush alfalfa field?", False),
        ("Siloslu qarğıdalını neçə həftədən sonra açıb heyvana vermək olar?", False),
        # Fines and hail nets are no growing matters either.
        ("Какой штраф за сжигание соломы на поле пшеницы?", True),
        ("Alma bağına dolu toru çəkmək istəyirəm, dirəklər necə olsun?", True),
        # A calf, raisins and the walls of a house are no field's matters.
        ("Телёнок третий день не ест, что с ним?", True),
        ("How long do raisins take to dry in the shade?", True),
        ("Evin divarında nəm var, nə edim?", True),
        # ...while raising rootstocks from seed is the nursery's.
        ("I'm raising apple seedlings from seed, when do I sow?", False),
        # How to mix a spray or a growth regulator is the label's and the agronomist's;
        # when to spray copper on grapes is the grapes article's.
        ("Bordo mayesini necə hazırlayım, neçə faiz?", True),
        ("What dose of gibberellic acid for table grapes?", True),
        ("Когда опрыскивать виноград бордоской смесью?", False),
        # Saving one's own seed, a licence, a potato disease no article names.
        ("Can I save seed from my own tomatoes for next year?", True),
        ("Do I need a licence to sell grape cuttings?", True),
        ("Kartofda xərçəng xəstəliyi var, nə edim?", True),
        # A quarantine pest's rules are the plant protection service's.
        ("Pomidorda karantin zərərvericisi tapılıb, məhsulu satmaq olar?", True),
    ],
)
def test_an_animals_care_stays_uncovered_with_its_feed_crop_named(
    text: str, uncovered: bool
) -> None:
    assert bool(understand(text).uncovered) is uncovered


def test_orange_as_a_colour_names_no_citrus() -> None:
    # Rust pustules are orange: the wheat question is no citrus one.
    assert understand("My wheat leaves have orange pustules, is it rust?").crops == ("wheat",)
    assert understand("When do I pick my oranges in Lənkəran?").crops == ("citrus",)


def test_the_kura_river_is_no_hens_and_cow_manure_no_cow() -> None:
    # "Куры" is the Kura's genitive in the Russian articles ("вдоль Куры"); hens stay uncovered.
    assert not understand("Земля вдоль Куры засолена, что делать?").uncovered
    assert "livestock" in understand("Куры перестали нестись, что делать?").uncovered
    # Manure rates are the soil article's, whoever made the manure.
    assert not understand("Сколько коровьего навоза вносить на гектар?").uncovered


@pytest.mark.parametrize(
    "text",
    [
        "хочу посадить цветную капусту, почему головки мелкие?",
        "şirin kartof nə vaxt əkilir?",
        "sweet corn for the market, when do I pick the cobs?",
        "grapefruit tree leaves are yellow, what do I give it?",
    ],
)
def test_an_uncovered_crop_whose_name_holds_a_covered_one_is_not_that_crop(text: str) -> None:
    # Cauliflower is no cabbage, sweet potato no potato, sweet corn no grain maize.
    u = understand(text)
    assert u.crops == () and "other_crops" in u.uncovered


def test_a_covered_crop_named_beside_such_a_compound_is_still_read() -> None:
    assert understand("kartof və şirin kartof yanaşı əkilə bilər?").crops == ("potato",)
    assert understand("how far apart do I plant cabbage?").crops == ("cabbage",)
