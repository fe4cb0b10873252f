"""Every user-facing sentence ALİM writes itself, in az, en and ru: one table (the offline
composer's frames and the hand-off messages). `text(key, language)` falls back to English."""

from __future__ import annotations

from typing import Any

TEXTS: dict[str, dict[str, str]] = {
    "waiting_ack": {
        "az": "Bunu sualınıza əlavə etdim; aqronom cavab verəndə bunu da görəcək.",
        "en": "I have added this to your question; the agronomist will see it when they answer.",
        "ru": "Я добавил это к вашему вопросу; агроном увидит это, когда будет отвечать.",
    },
    "closed_duplicate": {
        "az": "Təşəkkür edirik! Bu sual artıq başqa müraciətinizdə cavablandırılır, ona görə bu "
        "söhbəti bağladıq. Yeni sualınız olsa, buraya yaza bilərsiniz.",
        "en": "Thank you! This question is already being answered in another of your requests, "
        "so we have closed this one. You are welcome to ask something new here.",
        "ru": "Спасибо! На этот вопрос уже отвечают в другом вашем обращении, поэтому мы "
        "закрыли это. Если появится новый вопрос, пишите сюда.",
    },
    "closed_spam": {
        "az": "Bu müraciəti aqronom cavabı olmadan bağladıq. Əkin, suvarma, gübrə və ya hava "
        "barədə sualınız olsa, məmnuniyyətlə kömək edərik.",
        "en": "We have closed this request without an agronomist's answer. If you have a "
        "question about crops, irrigation, fertiliser or the weather, we are glad to help.",
        "ru": "Мы закрыли это обращение без ответа агронома. Если у вас есть вопрос о посевах, "
        "поливе, удобрениях или погоде, будем рады помочь.",
    },
    "closed_not_farming": {
        "az": "Bağışlayın, aqronomlarımız yalnız kənd təsərrüfatı suallarına cavab verir, ona görə "
        "bu sualı bağladıq. Əkin, heyvandarlıq və ya hava barədə soruşa bilərsiniz.",
        "en": "Sorry, our agronomists answer farming questions only, so we have closed this one. "
        "You are welcome to ask about crops, livestock or the weather.",
        "ru": "Извините, наши агрономы отвечают только на вопросы о сельском хозяйстве, поэтому "
        "мы закрыли этот вопрос. Спрашивайте о посевах, животноводстве или погоде.",
    },
    "other_language": {
        "az": "(Bu mövzuda material hələlik yalnız başqa dildədir.)",
        "en": "(On this topic our material is only in another language for now.)",
        "ru": "(По этой теме материал пока есть только на другом языке.)",
    },
    "nothing": {
        "az": "Təəssüf ki, bilik bazamızda bu suala uyğun material tapmadım.",
        "en": "I could not find material on this question in our knowledge base.",
        "ru": "К сожалению, в нашей базе знаний нет материала по этому вопросу.",
    },
    "sources": {"az": "Mənbələr:", "en": "Sources:", "ru": "Источники:"},
    "offline": {
        "az": "_Oflayn rejim: cavab bilik bazasındakı mətnlərdən seçilib, dil modeli istifadə "
        "olunmayıb._",
        "en": "_Offline mode: this answer is assembled from knowledge-base passages; no language "
        "model was used._",
        "ru": "_Офлайн-режим: ответ составлен из фрагментов базы знаний, языковая модель не "
        "использовалась._",
    },
    "forecast": {
        "az": "{place} üçün hava proqnozu:",
        "en": "Weather forecast for {place}:",
        "ru": "Прогноз погоды для {place}:",
    },
    "day": {
        "az": "• {date}: {tmin}…{tmax} °C, yağış {rain} mm, külək {wind} km/saata qədər",
        "en": "• {date}: {tmin}…{tmax} °C, rain {rain} mm, wind up to {wind} km/h",
        "ru": "• {date}: {tmin}…{tmax} °C, осадки {rain} мм, ветер до {wind} км/ч",
    },
    "advice": {
        "az": "Məsləhətlər (qaydalara əsasən):",
        "en": "Advice (from our agronomic rules):",
        "ru": "Советы (по агрономическим правилам):",
    },
    "no_advice": {
        "az": "Bu günlər üçün xüsusi risk görünmür; adi qulluq işlərini davam etdirin.",
        "en": "No particular weather risk shows up for these days; carry on with routine work.",
        "ru": "Особых погодных рисков на эти дни не видно; продолжайте обычные работы.",
    },
    "weather_unavailable": {
        "az": "Hazırda {place} üçün hava proqnozunu əldə etmək mümkün olmadı (proqnoz xidməti "
        "əlçatan deyil). Ümumi məsləhətlər verə bilərəm:",
        "en": "The weather forecast for {place} is unavailable right now (the forecast service "
        "cannot be reached). Here is general advice instead:",
        "ru": "Прогноз погоды для {place} сейчас недоступен (сервис прогноза не отвечает). "
        "Вот общие рекомендации:",
    },
    "profile": {
        "az": "Təsərrüfatınız üçün nəzərə alın: {profile}.",
        "en": "For your farm, keep in mind: {profile}.",
        "ru": "Для вашего хозяйства учтите: {profile}.",
    },
    "thanks": {
        "az": "Buyurun! Başqa sualınız olsa, yazın — suvarma, gübrə, zərərvericilər və ya hava "
        "barədə kömək edərəm.",
        "en": "You're welcome! If you have another question about irrigation, fertiliser, pests "
        "or the weather, just ask.",
        "ru": "Пожалуйста! Если появится вопрос о поливе, удобрениях, вредителях или погоде — "
        "пишите.",
    },
    "smalltalk": {
        "az": "Salam! Mən ALİM-əm — fermerlər üçün aqronomiya köməkçisi. Suvarma, torpaq, "
        "gübrələmə, zərərvericilər, xəstəliklər, səpin vaxtı və hava proqnozu barədə soruşa "
        "bilərsiniz. Lazım olsa, sualınızı aqronoma yönləndirərəm.",
        "en": "Hello! I am ALİM, an agronomy assistant for farmers. Ask me about irrigation, "
        "soil, fertiliser, pests, diseases, sowing dates or the weather forecast. If needed, I "
        "can pass your question to an agronomist.",
        "ru": "Здравствуйте! Я АЛИМ — агрономический помощник для фермеров. Спрашивайте о "
        "поливе, почве, удобрениях, вредителях, болезнях, сроках сева или прогнозе погоды. "
        "При необходимости я передам ваш вопрос агроному.",
    },
    "needs_question": {
        "az": "Buyurun, sualınızı yazın. Məsələn: «Pomidoru nə qədər tez-tez suvarmalıyam?» və "
        "ya «Sabah Qubada yağış olacaq?». Bitkini, rayonu və problemi qeyd etsəniz, daha dəqiq "
        "cavab verərəm.",
        "en": 'Please go ahead and ask. For example: "How often should I water tomatoes?" or '
        '"Will it rain in Quba tomorrow?". Mention the crop, the district and the problem and '
        "I can answer more precisely.",
        "ru": "Пожалуйста, задайте вопрос. Например: «Как часто поливать томаты?» или «Будет ли "
        "завтра дождь в Губе?». Укажите культуру, район и проблему — так ответ будет точнее.",
    },
    "off_topic": {
        "az": "Bağışlayın, mən yalnız kənd təsərrüfatı və hava ilə bağlı suallara cavab verirəm. "
        "Əkin, suvarma, gübrə, zərərvericilər və ya hava proqnozu barədə soruşa bilərsiniz.",
        "en": "Sorry, I can only help with farming and weather questions. Ask me about crops, "
        "irrigation, fertiliser, pests or the forecast.",
        "ru": "Извините, я отвечаю только на вопросы о сельском хозяйстве и погоде. Спрашивайте "
        "о посевах, поливе, удобрениях, вредителях или прогнозе.",
    },
    "handoff_user_requested": {
        "az": "Sorğunuzu aqronomumuza yönləndirdim. Mütəxəssis tezliklə bu söhbətdə cavab verəcək.",
        "en": "I have passed your request to our agronomist. An expert will reply in this "
        "conversation soon.",
        "ru": "Я передал ваш запрос нашему агроному. Специалист скоро ответит в этом чате.",
    },
    "handoff_low_confidence": {
        "az": "Bu sual üçün bilik bazamızda kifayət qədər etibarlı məlumat tapmadım, ona görə "
        "onu aqronoma yönləndirdim. Mütəxəssisin cavabı bu söhbətdə görünəcək.",
        "en": "I could not find reliable enough information on this in our knowledge base, so I "
        "have passed your question to an agronomist. The expert's answer will appear in this "
        "conversation.",
        "ru": "В нашей базе знаний недостаточно надёжной информации по этому вопросу, поэтому "
        "я передал его агроному. Ответ специалиста появится в этом чате.",
    },
}


def text(key: str, language: str, **values: Any) -> str:
    table = TEXTS[key]
    return table.get(language, table["en"]).format(**values)
