/* Built-in texts. A line of a body that mentions {subject} is left out when the policy hides the
 * subject, so hiding never leaves a dangling "Onderwerp:" behind. SMS texts never carry the subject:
 * a text message is read on lock screens. */
#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template_files.h"
#include "utf8.h"

struct text {
    const char *name, *language;
    enum channel_id channel;
    const char *subject, *subject_hidden, *body;
};

#define NL_GREETING "Beste {name},\n\n"
#define NL_CLOSING "\nLeest u het bericht, dan krijgt u hierover geen herinneringen meer.\n\n" \
                   "Met vriendelijke groet,\nMijnOverheid\n"
#define NL_READ "\n[Lees het bericht hier:\n{link}|Log in op MijnOverheid om het bericht te lezen.]\n"
#define EN_GREETING "Dear {name},\n\n"
#define EN_CLOSING "\nOnce you have read the message you will not get further reminders about it.\n\n" \
                   "Kind regards,\nMijnOverheid\n"
#define EN_READ "\n[Read the message here:\n{link}|Log in at MijnOverheid to read the message.]\n"
#define NL_SMS_READ "[Lees het op {link}|Log in op MijnOverheid om het te lezen.]"
#define EN_SMS_READ "[Read it at {link}|Log in at MijnOverheid to read it.]"

/* A letter: paragraphs separated by blank lines; a line that is the link alone is printed in
 * the link's typeface. The subject is what follows "Betreft:" / "Subject:". */
#define NL_LETTER \
    "Geachte heer/mevrouw,\n\nIn uw Berichtenbox op MijnOverheid staat[ sinds {created}] " \
    "[een bericht van {sender} over \u2018{subject}\u2019|een belangrijk bericht van {sender}] " \
    "dat u nog niet hebt gelezen.\n\n[U kunt het bericht lezen op:\n{link}\n" \
    "U logt in met uw DigiD.|U kunt het bericht lezen op mijn.overheid.nl. U logt in met uw " \
    "DigiD.]\n\nZodra u het bericht hebt gelezen, krijgt u er geen herinneringen meer over. " \
    "Hebt u het bericht inmiddels gelezen? Dan kunt u deze brief als niet verzonden " \
    "beschouwen.\n\nMet vriendelijke groet,\n\nMijnOverheid Berichtenbox\n"
#define EN_LETTER \
    "Dear Sir or Madam,\n\nThere is [a message from {sender} about \u2018{subject}\u2019|" \
    "an important message from {sender}] in your Berichtenbox on MijnOverheid[ since " \
    "{created}]. You have not read it yet.\n\n[You can read the message at:\n{link}\n" \
    "You log in with your DigiD.|You can read the message at mijn.overheid.nl. You log in " \
    "with your DigiD.]\n\nOnce you have read the message, you will receive no more reminders " \
    "about it. Have you read it in the meantime? Then please disregard this letter.\n\n" \
    "Kind regards,\n\nMijnOverheid Berichtenbox\n"
#define NL_LETTER_HIDDEN "Ongelezen bericht in uw Berichtenbox"
#define EN_LETTER_HIDDEN "Unread message in your Berichtenbox"
#define LETTER(name, lang, body) { name, lang, CHANNEL_PAPER, "{subject}", body##_HIDDEN, body }

/* "[...]" is left out when a placeholder in it has no value (an unknown date), "[A|B]" says B
 * instead (no link: the step or channel says link = false) */
static const struct text builtin_texts[] = {
    { "notice", "nl", CHANNEL_EMAIL, "Nieuw bericht van {sender}: {subject}",
      "Nieuw bericht van {sender} in uw Berichtenbox",
      NL_GREETING "{sender} heeft u[ op {created}] een bericht gestuurd in uw Berichtenbox van "
      "MijnOverheid.\nOnderwerp: {subject}\n" NL_READ NL_CLOSING },
    { "reminder", "nl", CHANNEL_EMAIL, "Herinnering: bericht van {sender}: {subject}",
      "Herinnering: ongelezen bericht van {sender}",
      NL_GREETING "U heeft een bericht van {sender}[ van {created}] nog niet gelezen.\n"
      "Onderwerp: {subject}\n" NL_READ NL_CLOSING },
    { "final", "nl", CHANNEL_EMAIL, "Laatste herinnering: bericht van {sender}: {subject}",
      "Laatste herinnering: ongelezen bericht van {sender}",
      NL_GREETING "Het bericht van {sender}[ van {created}] is nog steeds niet gelezen. Leest u "
      "het niet,\ndan sturen wij het u per post.\nOnderwerp: {subject}\n" NL_READ NL_CLOSING },
    { "notice", "en", CHANNEL_EMAIL, "New message from {sender}: {subject}",
      "New message from {sender} in your Berichtenbox",
      EN_GREETING "{sender} sent you a message[ on {created}] in your MijnOverheid Berichtenbox.\n"
      "Subject: {subject}\n" EN_READ EN_CLOSING },
    { "reminder", "en", CHANNEL_EMAIL, "Reminder: message from {sender}: {subject}",
      "Reminder: unread message from {sender}",
      EN_GREETING "You have not yet read the message {sender} sent you[ on {created}].\n"
      "Subject: {subject}\n" EN_READ EN_CLOSING },
    { "final", "en", CHANNEL_EMAIL, "Final reminder: message from {sender}: {subject}",
      "Final reminder: unread message from {sender}",
      EN_GREETING "The message {sender} sent you[ on {created}] is still unread. If you do not "
      "read it,\nwe will send it to you by post.\nSubject: {subject}\n" EN_READ EN_CLOSING },
    { "notice", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: u heeft een nieuw bericht van {sender}. " NL_SMS_READ },
    { "reminder", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: u heeft een ongelezen bericht van {sender}. " NL_SMS_READ },
    { "final", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: laatste herinnering, ongelezen bericht van {sender}. " NL_SMS_READ },
    LETTER("notice", "nl", NL_LETTER),
    LETTER("reminder", "nl", NL_LETTER),
    LETTER("final", "nl", NL_LETTER),
    LETTER("notice", "en", EN_LETTER),
    LETTER("reminder", "en", EN_LETTER),
    LETTER("final", "en", EN_LETTER),
    { "notice", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: you have a new message from {sender}. " EN_SMS_READ },
    { "reminder", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: you have an unread message from {sender}. " EN_SMS_READ },
    { "final", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: final reminder, unread message from {sender}. " EN_SMS_READ },
};

/* One notice about several messages (a policy's bundle, count > 1): the built-in wording names
 * them all through {messages} and speaks of {count}; the link is the inbox's. SMS texts name the
 * count only: a list would not fit one part. */
#define NL_READ_ALL "\n[Lees de berichten hier:\n{link}|Log in op MijnOverheid om de berichten te " \
                    "lezen.]\n"
#define EN_READ_ALL "\n[Read the messages here:\n{link}|Log in at MijnOverheid to read the " \
                    "messages.]\n"
#define NL_CLOSING_ALL "\nLeest u een bericht, dan krijgt u daarover geen herinneringen meer.\n\n" \
                       "Met vriendelijke groet,\nMijnOverheid\n"
#define EN_CLOSING_ALL "\nOnce you have read a message you will not get further reminders about " \
                       "it.\n\nKind regards,\nMijnOverheid\n"
#define NL_SMS_READ_ALL "[Lees ze op {link}|Log in op MijnOverheid om ze te lezen.]"
#define EN_SMS_READ_ALL "[Read them at {link}|Log in at MijnOverheid to read them.]"
#define NL_LETTER_ALL \
    "Geachte heer/mevrouw,\n\nIn uw Berichtenbox op MijnOverheid staan {count} berichten die u " \
    "nog niet hebt gelezen:\n{messages}\n\n[U kunt de berichten lezen op:\n{link}\n" \
    "U logt in met uw DigiD.|U kunt de berichten lezen op mijn.overheid.nl. U logt in met uw " \
    "DigiD.]\n\nZodra u een bericht hebt gelezen, krijgt u er geen herinneringen meer over. " \
    "Hebt u de berichten inmiddels gelezen? Dan kunt u deze brief als niet verzonden " \
    "beschouwen.\n\nMet vriendelijke groet,\n\nMijnOverheid Berichtenbox\n"
#define EN_LETTER_ALL \
    "Dear Sir or Madam,\n\nThere are {count} messages in your Berichtenbox on MijnOverheid " \
    "that you have not read yet:\n{messages}\n\n[You can read the messages at:\n{link}\n" \
    "You log in with your DigiD.|You can read the messages at mijn.overheid.nl. You log in " \
    "with your DigiD.]\n\nOnce you have read a message, you will receive no more reminders " \
    "about it. Have you read them in the meantime? Then please disregard this letter.\n\n" \
    "Kind regards,\n\nMijnOverheid Berichtenbox\n"
#define LETTER_ALL(name, lang, subject, body) { name, lang, CHANNEL_PAPER, subject, subject, body }

static const struct text bundle_texts[] = {
    { "notice", "nl", CHANNEL_EMAIL, "{count} nieuwe berichten in uw Berichtenbox",
      "{count} nieuwe berichten in uw Berichtenbox",
      NL_GREETING "U heeft {count} nieuwe berichten in uw Berichtenbox van MijnOverheid:\n"
      "{messages}\n" NL_READ_ALL NL_CLOSING_ALL },
    { "reminder", "nl", CHANNEL_EMAIL, "Herinnering: {count} ongelezen berichten",
      "Herinnering: {count} ongelezen berichten",
      NL_GREETING "U heeft {count} berichten in uw Berichtenbox nog niet gelezen:\n{messages}\n"
      NL_READ_ALL NL_CLOSING_ALL },
    { "final", "nl", CHANNEL_EMAIL, "Laatste herinnering: {count} ongelezen berichten",
      "Laatste herinnering: {count} ongelezen berichten",
      NL_GREETING "Deze {count} berichten zijn nog steeds niet gelezen. Leest u ze niet,\n"
      "dan sturen wij ze u per post:\n{messages}\n" NL_READ_ALL NL_CLOSING_ALL },
    { "notice", "en", CHANNEL_EMAIL, "{count} new messages in your Berichtenbox",
      "{count} new messages in your Berichtenbox",
      EN_GREETING "You have {count} new messages in your MijnOverheid Berichtenbox:\n"
      "{messages}\n" EN_READ_ALL EN_CLOSING_ALL },
    { "reminder", "en", CHANNEL_EMAIL, "Reminder: {count} unread messages",
      "Reminder: {count} unread messages",
      EN_GREETING "You have not yet read {count} messages in your Berichtenbox:\n{messages}\n"
      EN_READ_ALL EN_CLOSING_ALL },
    { "final", "en", CHANNEL_EMAIL, "Final reminder: {count} unread messages",
      "Final reminder: {count} unread messages",
      EN_GREETING "These {count} messages are still unread. If you do not read them,\n"
      "we will send them to you by post:\n{messages}\n" EN_READ_ALL EN_CLOSING_ALL },
    { "notice", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: u heeft {count} nieuwe berichten in uw Berichtenbox. " NL_SMS_READ_ALL },
    { "reminder", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: u heeft {count} ongelezen berichten in uw Berichtenbox. " NL_SMS_READ_ALL },
    { "final", "nl", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: laatste herinnering, {count} ongelezen berichten in uw Berichtenbox. "
      NL_SMS_READ_ALL },
    { "notice", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: you have {count} new messages in your Berichtenbox. " EN_SMS_READ_ALL },
    { "reminder", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: you have {count} unread messages in your Berichtenbox. " EN_SMS_READ_ALL },
    { "final", "en", CHANNEL_SMS, NULL, NULL,
      "MijnOverheid: final reminder, {count} unread messages in your Berichtenbox. "
      EN_SMS_READ_ALL },
    LETTER_ALL("notice", "nl", "{count} ongelezen berichten in uw Berichtenbox", NL_LETTER_ALL),
    LETTER_ALL("reminder", "nl", "{count} ongelezen berichten in uw Berichtenbox", NL_LETTER_ALL),
    LETTER_ALL("final", "nl", "{count} ongelezen berichten in uw Berichtenbox", NL_LETTER_ALL),
    LETTER_ALL("notice", "en", "{count} unread messages in your Berichtenbox", EN_LETTER_ALL),
    LETTER_ALL("reminder", "en", "{count} unread messages in your Berichtenbox", EN_LETTER_ALL),
    LETTER_ALL("final", "en", "{count} unread messages in your Berichtenbox", EN_LETTER_ALL),
};

int template_exists(const struct templates *set, enum channel_id channel, const char *name)
{
    for (size_t i = 0; i < sizeof(builtin_texts) / sizeof(builtin_texts[0]); i++)
        if (builtin_texts[i].channel == channel && strcmp(builtin_texts[i].name, name) == 0)
            return 1;
    for (size_t i = 0; set && i < set->n; i++)
        if (set->v[i].channel == channel && strcmp(set->v[i].name, name) == 0)
            return 1;
    return 0;
}

static const char *var_value(const struct template_vars *v, const char *key, size_t len,
                             int *known, int *lines)
{
    *lines = len == 8 && memcmp(key, "messages", 8) == 0;
    *known = 1;
#define VAR(k, field) \
    if (len == sizeof(k) - 1 && memcmp(key, k, len) == 0) return v->field;
    VAR("name", name)
    VAR("sender", sender)
    VAR("subject", subject)
    VAR("link", link)
    VAR("created", created)
    VAR("due_date", due_date)
    VAR("count", count)
    VAR("messages", messages)
#undef VAR
    *known = 0;
    return NULL;
}

/* Expand the placeholders in [P, END) into F; *EMPTY is set when a known one had no value. */
static void expand_span(FILE *f, const char *p, const char *end, const struct template_vars *vars,
                        int *empty)
{
    for (; p < end; p++) {
        const char *close, *val;
        int known = 0, lines = 0;
        if (*p == '{' && (close = memchr(p, '}', end - p)) != NULL &&
            (val = var_value(vars, p + 1, close - p - 1, &known, &lines), known)) {
            if (val == NULL || *val == '\0')
                *empty = 1;
            /* a value stays on its line: no line breaks or other controls from the data (the
             * list of messages is one line per message: its own line breaks stay) */
            for (; val && *val; val++)
                fputc((*val == '\n' && lines) ? '\n'
                      : (unsigned char)*val < 0x20 || *val == 0x7f ? ' ' : *val, f);
            p = close;
        } else
            fputc(*p, f);
    }
}

/* FORMAT without the lines that would show a hidden subject. */
static char *drop_hidden_lines(const char *format, const struct template_vars *vars)
{
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);

    if (f == NULL)
        return NULL;
    int depth = 0;             /* inside "[...]": that has its own rule for a missing value */
    while (*format) {
        const char *line_end = strchr(format, '\n');
        size_t line_len = line_end ? (size_t)(line_end - format + 1) : strlen(format);
        int mentions = 0;
        for (size_t i = 0; i < line_len; i++) {
            depth += format[i] == '[' ? 1 : format[i] == ']' && depth > 0 ? -1 : 0;
            mentions |= depth == 0 && strncmp(format + i, "{subject}", 9) == 0;
        }
        if (vars->subject != NULL || !mentions)
            fwrite(format, 1, line_len, f);
        format += line_len;
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

char *template_expand(const char *format, const struct template_vars *vars)
{
    char *out = NULL, *fmt = drop_hidden_lines(format, vars);
    size_t outlen = 0;
    FILE *f = fmt ? open_memstream(&out, &outlen) : NULL;
    int ignored = 0;

    if (f == NULL) {
        free(fmt);
        return NULL;
    }
    for (const char *p = fmt; *p;) {
        const char *close = *p == '[' ? strchr(p, ']') : NULL;
        if (close == NULL) {
            size_t n = strcspn(p + 1, "[") + 1;     /* up to the next '[' */
            expand_span(f, p, p + n, vars, &ignored);
            p += n;
            continue;
        }
        /* "[A|B]": A when every placeholder in it has a value, else B (or nothing) */
        const char *bar = memchr(p, '|', close - p);
        const char *a_end = bar ? bar : close;
        char *a = NULL;
        size_t alen = 0;
        int empty = 0;
        FILE *af = open_memstream(&a, &alen);
        if (af == NULL)
            goto fail;
        expand_span(af, p + 1, a_end, vars, &empty);
        if (fclose(af) != 0) {
            free(a);
            goto fail;
        }
        if (!empty)
            fwrite(a, 1, alen, f);
        else if (bar)
            expand_span(f, bar + 1, close, vars, &ignored);
        free(a);
        p = close + 1;
    }
    free(fmt);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
fail:
    free(fmt);
    fclose(f);
    free(out);
    return NULL;
}

/* The file for (CHANNEL, NAME, LANGUAGE). For a notice about several messages only one that
 * speaks of them ({count} or {messages}): a text naming one of three would mislead. */
static const struct template_file *find_file(const struct templates *set,
                                             enum channel_id channel, const char *name,
                                             const char *language, int bundled)
{
    const struct template_file *f = templates_find(set, channel, name, language);

    if (f && bundled && !strstr(f->body, "{count}") && !strstr(f->body, "{messages}") &&
        !strstr(f->subject ? f->subject : "", "{count}"))
        return NULL;
    return f;
}

static const struct text *find_text_for(const struct templates *set, enum channel_id channel,
                                        const char *name, const char *language, int bundled,
                                        struct text *file)
{
    const struct text *fallback = NULL;
    const struct template_file *f = NULL;
    const struct text *texts = bundled ? bundle_texts : builtin_texts;
    size_t ntexts = bundled ? sizeof(bundle_texts) / sizeof(bundle_texts[0])
                            : sizeof(builtin_texts) / sizeof(builtin_texts[0]);

    if (language != NULL && (f = find_file(set, channel, name, language, bundled)) == NULL)
        for (size_t i = 0; i < ntexts && f == NULL; i++)
            if (texts[i].channel == channel && strcmp(texts[i].name, name) == 0 &&
                strcmp(texts[i].language, language) == 0)
                return &texts[i];
    if (f == NULL)
        f = find_file(set, channel, name, "nl", bundled);
    if (f != NULL) {
        *file = (struct text){ f->name, f->language, f->channel, f->subject,
                               f->subject_hidden ? f->subject_hidden : f->subject, f->body };
        return file;
    }

    for (size_t i = 0; i < ntexts; i++) {
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

/* The text for CHANNEL, NAME and LANGUAGE: a file of the templates directory first, then the
 * built-in one; without one in LANGUAGE, Dutch the same way. BUNDLED: the wording for several
 * messages; when there is none of that name (an admin's own template that does not speak of
 * them), the wording for one. */
static const struct text *find_text(const struct templates *set, enum channel_id channel,
                                    const char *name, const char *language, int bundled,
                                    struct text *file)
{
    const struct text *t = find_text_for(set, channel, name, language, bundled, file);

    return t == NULL && bundled ? find_text_for(set, channel, name, language, 0, file) : t;
}

/* Longest values (characters) per channel, so no sender or subject, however long in the
 * database, can blow up a header, push the link out of a text or fill a page. */
static const struct {
    size_t name, sender, subject;
} limits[CHANNEL_COUNT] = {
    [CHANNEL_EMAIL] = { TEMPLATE_NAME_MAX, TEMPLATE_SENDER_MAX, TEMPLATE_SUBJECT_MAX },
    [CHANNEL_SMS] = { TEMPLATE_SMS_NAME_MAX, TEMPLATE_SMS_SENDER_MAX, TEMPLATE_SUBJECT_MAX },
    [CHANNEL_PAPER] = { TEMPLATE_NAME_MAX, TEMPLATE_SENDER_MAX, TEMPLATE_SUBJECT_MAX },
};

int template_render(enum channel_id channel, const char *name, const char *language,
                    const struct template_vars *vars, char **subject, char **body)
{
    return template_render_with(NULL, channel, name, language, vars, subject, body);
}

int template_render_with(const struct templates *set, enum channel_id channel, const char *name,
                         const char *language, const struct template_vars *vars, char **subject,
                         char **body)
{
    struct text file;
    const struct text *t = find_text(set, channel, name ? name : "notice", language,
                                     vars->count && strcmp(vars->count, "1") != 0, &file);
    struct template_vars cut = *vars;
    char *c_name = NULL, *c_sender = NULL, *c_subject = NULL, *messages = NULL;
    int rc = -1;

    *body = NULL;
    if (subject)
        *subject = NULL;
    if (t == NULL)
        return -1;
    if ((vars->name && (cut.name = c_name = utf8_cut(vars->name, limits[channel].name)) == NULL) ||
        (vars->sender &&
         (cut.sender = c_sender = utf8_cut(vars->sender, limits[channel].sender)) == NULL) ||
        (vars->subject &&
         (cut.subject = c_subject = utf8_cut(vars->subject, limits[channel].subject)) == NULL))
        goto out;
    if (cut.count == NULL)
        cut.count = "1";
    if (cut.messages == NULL) {     /* this message alone: "sender: subject" */
        if (asprintf(&messages, "%s%s%s", cut.sender ? cut.sender : "",
                     cut.subject ? ": " : "", cut.subject ? cut.subject : "") < 0) {
            messages = NULL;
            goto out;
        }
        cut.messages = messages;
    }
    if (subject && t->subject) {
        *subject = template_expand(cut.subject ? t->subject : t->subject_hidden, &cut);
        if (*subject == NULL)
            goto out;
    }
    if ((*body = template_expand(t->body, &cut)) == NULL) {
        if (subject) {
            free(*subject);
            *subject = NULL;
        }
        goto out;
    }
    rc = 0;
out:
    free(c_name);
    free(c_sender);
    free(c_subject);
    free(messages);
    return rc;
}

/* V cut to MAX characters, on one line, into F */
static void put_value(FILE *f, const char *v, size_t max)
{
    char *cut = utf8_cut(v ? v : "", max);

    for (const char *p = cut ? cut : ""; *p; p++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
    free(cut);
}

char *template_message_list(const struct template_item *items, size_t n, const char *language)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    int en = language && strcmp(language, "en") == 0;

    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < n && i < TEMPLATE_BUNDLE_NAMED; i++) {
        fputs(i ? "\n- " : "- ", f);
        put_value(f, items[i].sender, TEMPLATE_SENDER_MAX);
        if (items[i].subject) {
            fputs(": ", f);
            put_value(f, items[i].subject, TEMPLATE_SUBJECT_MAX);
        }
    }
    if (n > TEMPLATE_BUNDLE_NAMED)
        fprintf(f, en ? "\n- and %zu more messages" : "\n- en %zu andere berichten",
                n - TEMPLATE_BUNDLE_NAMED);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

int template_date(double t, char *out, size_t len)
{
    time_t tt;
    struct tm tm;

    if (len > 0)
        out[0] = '\0';
    /* NaN, +-infinity and the far past or future never reach a citizen as a date */
    if (!(t >= TEMPLATE_DATE_MIN && t < TEMPLATE_DATE_MAX))
        return -1;
    tt = (time_t)t;
    if (localtime_r(&tt, &tm) == NULL || strftime(out, len, "%d-%m-%Y", &tm) == 0) {
        if (len > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}
