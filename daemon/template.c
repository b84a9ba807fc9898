/* Built-in texts. A line of a body that mentions {subject} is left out when the policy hides the
 * subject, so hiding never leaves a dangling "Onderwerp:" behind. SMS texts never carry the subject:
 * a text message is read on lock screens. */
#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct text {
    const char *name, *language;
    enum channel_id channel;
    const char *subject, *subject_hidden, *body;
};

#define NL_GREETING "Beste {name},\n\n"
#define NL_CLOSING "\nLeest u het bericht, dan krijgt u hierover geen herinneringen meer.\n\n" \
                   "Met vriendelijke groet,\nMijnOverheid\n"
#define EN_GREETING "Dear {name},\n\n"
#define EN_CLOSING "\nOnce you have read the message you will not get further reminders about it.\n\n" \
                   "Kind regards,\nMijnOverheid\n"

static const struct text texts[] = {
    { "notice", "nl", CHANNEL_EMAIL, "Nieuw bericht van {sender}: {subject}",
      "Nieuw bericht van {sender} in uw Berichtenbox",
      NL_GREETING "{sender} heeft u op {created} een bericht gestuurd in uw Berichtenbox van MijnOverheid.\n"
      "Onderwerp: {subject}\n\nLees het bericht hier:\n{link}\n" NL_CLOSING },
    { "reminder", "nl", CHANNEL_EMAIL, "Herinnering: bericht van {sender}: {subject}",
      "Herinnering: ongelezen bericht van {sender}",
      NL_GREETING "U heeft een bericht van {sender} van {created} nog niet gelezen.\n"
      "Onderwerp: {subject}\n\nLees het bericht hier:\n{link}\n" NL_CLOSING },
    { "final", "nl", CHANNEL_EMAIL, "Laatste herinnering: bericht van {sender}: {subject}",
      "Laatste herinnering: ongelezen bericht van {sender}",
      NL_GREETING "Het bericht van {sender} van {created} is nog steeds niet gelezen. Leest u het niet,\n"
      "dan sturen wij het u per post.\nOnderwerp: {subject}\n\nLees het bericht hier:\n{link}\n" NL_CLOSING },
    { "notice", "en", CHANNEL_EMAIL, "New message from {sender}: {subject}",
      "New message from {sender} in your Berichtenbox",
      EN_GREETING "{sender} sent you a message on {created} in your MijnOverheid Berichtenbox.\n"
      "Subject: {subject}\n\nRead the message here:\n{link}\n" EN_CLOSING },
    { "reminder", "en", CHANNEL_EMAIL, "Reminder: message from {sender}: {subject}",
      "Reminder: unread message from {sender}",
      EN_GREETING "You have not yet read the message {sender} sent you on {created}.\n"
      "Subject: {subject}\n\nRead the message here:\n{link}\n" EN_CLOSING },
    { "final", "en", CHANNEL_EMAIL, "Final reminder: message from {sender}: {subject}",
      "Final reminder: unread message from {sender}",
      EN_GREETING "The message {sender} sent you on {created} is still unread. If you do not read it,\n"
      "we will send it to you by post.\nSubject: {subject}\n\nRead the message here:\n{link}\n" EN_CLOSING },
    { "notice", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: u heeft een nieuw bericht van {sender}. Lees het op {link}" },
    { "reminder", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: u heeft een ongelezen bericht van {sender}. Lees het op {link}" },
    { "final", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: laatste herinnering, ongelezen bericht van {sender}. Lees het op {link}" },
    { "notice", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: you have a new message from {sender}. Read it at {link}" },
    { "reminder", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: you have an unread message from {sender}. Read it at {link}" },
    { "final", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: final reminder, unread message from {sender}. Read it at {link}" },
};

int template_exists(const char *name)
{
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (strcmp(texts[i].name, name) == 0)
            return 1;
    return 0;
}

static const char *var_value(const struct template_vars *v, const char *key, size_t len)
{
#define VAR(k, field) \
    if (len == sizeof(k) - 1 && memcmp(key, k, len) == 0) return v->field ? v->field : "";
    VAR("name", name)
    VAR("sender", sender)
    VAR("subject", subject)
    VAR("link", link)
    VAR("created", created)
#undef VAR
    return NULL;
}

char *template_expand(const char *format, const struct template_vars *vars)
{
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);

    if (f == NULL)
        return NULL;
    while (*format) {
        const char *line_end = strchr(format, '\n');
        size_t line_len = line_end ? (size_t)(line_end - format + 1) : strlen(format);
        /* hidden subject: drop the whole line that would show it */
        if (vars->subject == NULL && memmem(format, line_len, "{subject}", 9) != NULL) {
            format += line_len;
            continue;
        }
        for (const char *p = format; p < format + line_len; p++) {
            const char *close;
            const char *val = NULL;
            if (*p == '{' && (close = memchr(p, '}', format + line_len - p)) != NULL &&
                (val = var_value(vars, p + 1, close - p - 1)) != NULL) {
                /* a value stays on its line: no line breaks or other controls from the data */
                for (; *val; val++)
                    fputc((unsigned char)*val < 0x20 || *val == 0x7f ? ' ' : *val, f);
                p = close;
            } else
                fputc(*p, f);
        }
        format += line_len;
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static const struct text *find_text(enum channel_id channel, const char *name, const char *language)
{
    const struct text *fallback = NULL;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        const struct text *t = &texts[i];
        if (t->channel != channel || strcmp(t->name, name) != 0)
            continue;
        if (language != NULL && strcmp(t->language, language) == 0)
            return t;
        if (strcmp(t->language, "nl") == 0)
            fallback = t;
    }
    return fallback;
}

int template_render(enum channel_id channel, const char *name, const char *language,
                    const struct template_vars *vars, char **subject, char **body)
{
    const struct text *t = find_text(channel, name, language);

    *body = NULL;
    if (subject)
        *subject = NULL;
    if (t == NULL)
        return -1;
    if (subject && t->subject) {
        *subject = template_expand(vars->subject ? t->subject : t->subject_hidden, vars);
        if (*subject == NULL)
            return -1;
    }
    if ((*body = template_expand(t->body, vars)) == NULL) {
        if (subject) {
            free(*subject);
            *subject = NULL;
        }
        return -1;
    }
    return 0;
}
