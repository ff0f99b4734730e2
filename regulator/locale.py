"""Simplified Chinese unless the user picked another language with the switcher.

Django's LocaleMiddleware also follows the browser's Accept-Language, so an inspector whose
browser happens to be set to English would get English pages. Here only the language cookie
(set by the switcher, /i18n/setlang/) changes the language; everyone else gets LANGUAGE_CODE.
"""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class ChosenLanguageMiddleware(LocaleMiddleware):
    def process_request(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        supported = {code for code, _name in settings.LANGUAGES}
        language = chosen if chosen in supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
