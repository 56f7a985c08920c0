"""Welsh and Urdu translations of the seed's agreement and forms (server/seed_content.py), by text key.

Written for the demo: plain, modern Welsh in the "chi" register, and Urdu in the "aap" register
(shown in a Nastaliq font where the phone has one). Grade letters A to D stay Latin: they are
keys, not words. The checklist's and the mystery shop's lines that repeat the agreement's
promises and standards take the agreement's own translations, so each promise reads the same
wherever it is shown. See sync/content.py for what a text key names.
"""

from __future__ import annotations

from server.seed_content import AGREEMENT

LANGUAGES = ("cy", "ur")

# The scale every street line is graded on, and the street form's sections, by language.
_SCALE = {
    "cy": {"A": "Dim problem o gwbl", "B": "Ychydig o broblem, ond mae'r lefel yn dderbyniol",
           "C": "Problem sy'n dechrau mynd yn annerbyniol", "D": "Mae problem fawr iawn sy'n annerbyniol"},
    "ur": {"A": "کوئی مسئلہ نہیں", "B": "تھوڑا سا مسئلہ ہے لیکن قابلِ قبول حد تک",
           "C": "مسئلہ ناقابلِ قبول ہوتا جا رہا ہے", "D": "بہت بڑا مسئلہ ہے جو ناقابلِ قبول ہے"},
}

# Each street line: its label, then its wording for A, B, C and D.
_STREET_LINES = {
    "cy": {
        "groups_loitering": ("Grwpiau'n loetran a/neu ymddygiad afreolus (NI 17)",
                             "Dim ymddygiad afreolus na grwpiau'n ymgasglu",
                             "Grwpiau bach yn ymgasglu ond ymddygiad derbyniol",
                             "Grwpiau mawr yn ymgasglu'n rheolaidd ac yn ymddwyn yn swnllyd ac yn afreolus",
                             "Aflonyddwch mawr, gan gynnwys trais ac ymddygiad swnllyd, afreolus a throseddol"),
        "noise": ("Sŵn",
                  "Tawel; dim sŵn y tu hwnt i fywyd bob dydd",
                  "Ychydig o sŵn bob hyn a hyn, ond gellir ei oddef",
                  "Cerddoriaeth uchel, gweiddi neu beiriannau'n aflonyddu ar drigolion yn rheolaidd",
                  "Sŵn cyson neu hwyr y nos sy'n atal pobl rhag cysgu neu ddefnyddio'u cartrefi"),
        "street_lighting": ("Goleuadau stryd",
                            "Pob golau stryd yn gweithio",
                            "Un golau wedi diffodd, mae'r stryd yn dal wedi'i goleuo",
                            "Sawl golau wedi diffodd, gan adael darnau tywyll",
                            "Y rhan fwyaf o'r goleuadau wedi diffodd; mae'r stryd yn dywyll ac yn teimlo'n anniogel"),
        "abandoned_vehicles": ("Cerbydau wedi'u gadael",
                               "Dim cerbydau wedi'u gadael",
                               "Cerbyd a allai fod wedi'i adael ond nad yw'n achosi problem",
                               "Cerbyd wedi'i adael sy'n rhwystr neu'n hyll",
                               "Cerbydau wedi'u gadael sydd wedi'u llosgi, eu fandaleiddio neu sy'n beryglus"),
        "litter": ("Sbwriel",
                   "Dim sbwriel",
                   "Ychydig o sbwriel",
                   "Sbwriel yn casglu ar hyd y stryd ac yn y corneli",
                   "Llawer o sbwriel ym mhobman; biniau'n gorlifo"),
        "dog_fouling": ("Baw cŵn",
                        "Dim baw cŵn",
                        "Un neu ddau achos",
                        "Baw cŵn mewn sawl man ar lwybrau neu ar y gwair",
                        "Baw cŵn ym mhobman; mae'n annymunol defnyddio'r llwybrau"),
        "fly_tipping": ("Tipio anghyfreithlon",
                        "Dim tipio anghyfreithlon",
                        "Un bag bach neu un eitem wedi'i gadael",
                        "Sawl bag neu eitem fawr wedi'u gadael",
                        "Tomen fawr o sbwriel, dodrefn neu wastraff peryglus"),
        "graffiti": ("Graffiti",
                     "Dim graffiti",
                     "Tagiau bach mewn ambell fan",
                     "Graffiti ar sawl wal, caead siop neu arwydd",
                     "Graffiti sarhaus neu ym mhobman"),
        "overgrown_vegetation": ("Tyfiant wedi gordyfu",
                                 "Perthi, coed ac ymylon glaswellt mewn cyflwr da",
                                 "Ychydig o dyfiant dros lwybrau ond hawdd mynd heibio",
                                 "Tyfiant yn rhwystro llwybrau, arwyddion neu oleuadau",
                                 "Llwybrau na ellir mynd ar eu hyd, neu'r olygfa wedi'i rhwystro ar gyffyrdd"),
        "bins_on_street": ("Biniau wedi'u gadael allan ar y stryd",
                           "Biniau'n cael eu casglu i mewn ar ôl y casgliad",
                           "Ambell fin wedi'i adael allan",
                           "Llawer o finiau wedi'u gadael allan, yn rhwystro llwybrau",
                           "Biniau wedi'u gadael allan drwy'r amser, yn gorlifo neu wedi'u rhoi ar dân"),
        "empty_properties": ("Eiddo gwag neu wedi'i esgeuluso",
                             "Dim eiddo gwag nac wedi'i esgeuluso",
                             "Eiddo gwag sy'n cael ei gadw'n ddiogel",
                             "Eiddo gwag sy'n dirywio neu'n agored",
                             "Eiddo gwag sy'n agored, wedi'i fandaleiddio neu'n cael ei ddefnyddio i droseddu"),
        "paths_and_roads": ("Llwybrau a ffyrdd",
                            "Llwybrau a ffyrdd mewn cyflwr da",
                            "Mân graciau neu draul",
                            "Tyllau yn y ffordd neu balmant wedi torri a allai faglu rhywun",
                            "Arwynebau peryglus sydd angen eu trwsio ar frys"),
    },
    "ur": {
        "groups_loitering": ("گروہوں کا بلاوجہ جمع ہونا اور/یا بدنظمی (NI 17)",
                             "نہ کوئی بدنظمی ہے اور نہ گروہ جمع ہوتے ہیں",
                             "چھوٹے گروہ جمع ہوتے ہیں لیکن رویہ قابلِ قبول ہے",
                             "بڑے گروہ باقاعدگی سے جمع ہو کر ہنگامہ اور شور کرتے ہیں",
                             "شدید بدامنی، جس میں تشدد، ہنگامہ، شور اور مجرمانہ رویہ شامل ہے"),
        "noise": ("شور",
                  "خاموشی؛ روزمرہ زندگی سے زیادہ کوئی شور نہیں",
                  "کبھی کبھار کچھ شور، لیکن قابلِ برداشت",
                  "اونچی موسیقی، چیخ و پکار یا مشینوں کا شور باقاعدگی سے رہائشیوں کو پریشان کرتا ہے",
                  "مسلسل یا رات گئے کا شور جو لوگوں کو سونے یا اپنا گھر استعمال کرنے نہیں دیتا"),
        "street_lighting": ("اسٹریٹ لائٹس",
                            "تمام اسٹریٹ لائٹس کام کر رہی ہیں",
                            "ایک لائٹ بند ہے، گلی میں پھر بھی روشنی ہے",
                            "کئی لائٹس بند ہیں، جس سے کچھ حصے اندھیرے میں ہیں",
                            "زیادہ تر لائٹس بند ہیں؛ گلی اندھیری ہے اور غیر محفوظ لگتی ہے"),
        "abandoned_vehicles": ("لاوارث گاڑیاں",
                               "کوئی لاوارث گاڑی نہیں",
                               "ایک گاڑی جو شاید لاوارث ہے لیکن مسئلہ پیدا نہیں کر رہی",
                               "ایک لاوارث گاڑی جو راستہ روکتی ہے یا بدنما لگتی ہے",
                               "جلی ہوئی، توڑ پھوڑ کا شکار یا خطرناک لاوارث گاڑیاں"),
        "litter": ("کوڑا کرکٹ",
                   "کوئی کوڑا نہیں",
                   "کوڑے کی چند چیزیں",
                   "گلی میں اور کونوں میں کوڑا جمع ہو رہا ہے",
                   "ہر طرف بہت زیادہ کوڑا؛ کوڑے دان بھرے ہوئے ہیں"),
        "dog_fouling": ("کتوں کی گندگی",
                        "کتوں کی کوئی گندگی نہیں",
                        "ایک یا دو جگہ",
                        "راستوں یا گھاس پر کئی جگہ کتوں کی گندگی",
                        "ہر جگہ کتوں کی گندگی؛ راستوں پر چلنا ناگوار ہے"),
        "fly_tipping": ("غیر قانونی طور پر پھینکا گیا کوڑا",
                        "کوئی کوڑا غیر قانونی طور پر نہیں پھینکا گیا",
                        "ایک چھوٹا تھیلا یا ایک چیز پھینکی گئی ہے",
                        "کئی تھیلے یا کوئی بڑی چیز پھینکی گئی ہے",
                        "کوڑے، فرنیچر یا خطرناک فضلے کا بڑا ڈھیر"),
        "graffiti": ("دیواروں پر لکھائی (گرافٹی)",
                     "کوئی گرافٹی نہیں",
                     "چند جگہوں پر چھوٹے نشان",
                     "کئی دیواروں، شٹروں یا سائن بورڈز پر گرافٹی",
                     "توہین آمیز یا ہر جگہ پھیلی ہوئی گرافٹی"),
        "overgrown_vegetation": ("بے قابو بڑھی ہوئی جھاڑیاں اور پودے",
                                 "باڑیں، درخت اور سڑک کنارے گھاس اچھی حالت میں",
                                 "راستوں پر کچھ پودے بڑھ آئے ہیں لیکن گزرنا آسان ہے",
                                 "بڑھے ہوئے پودے راستے، سائن بورڈ یا لائٹس روک رہے ہیں",
                                 "راستے بند ہیں یا چوراہوں پر سامنے دیکھنا مشکل ہے"),
        "bins_on_street": ("گلی میں باہر چھوڑے گئے کوڑے دان",
                           "کوڑا اٹھانے کے بعد کوڑے دان اندر رکھ دیے جاتے ہیں",
                           "چند کوڑے دان باہر رہ گئے ہیں",
                           "بہت سے کوڑے دان باہر ہیں اور راستہ روک رہے ہیں",
                           "کوڑے دان ہمیشہ باہر رہتے ہیں، بھرے ہوئے ہیں یا انہیں آگ لگائی گئی ہے"),
        "empty_properties": ("خالی یا لاپروائی کا شکار مکانات",
                             "کوئی خالی یا لاپروائی کا شکار مکان نہیں",
                             "ایک خالی مکان جو محفوظ رکھا گیا ہے",
                             "خالی مکانات جو خستہ حال ہو رہے ہیں یا کھلے پڑے ہیں",
                             "خالی مکانات جو کھلے ہیں، توڑ پھوڑ کا شکار ہیں یا جرائم کے لیے استعمال ہوتے ہیں"),
        "paths_and_roads": ("راستے اور سڑکیں",
                            "راستے اور سڑکیں اچھی حالت میں ہیں",
                            "معمولی دراڑیں یا گھساؤ",
                            "گڑھے یا ٹوٹا ہوا فرش جس سے کوئی گر سکتا ہے",
                            "خطرناک سطحیں جن کی فوری مرمت ضروری ہے"),
    },
}

_STREET = {
    "cy": {"title": "Ffurflen Monitro Cytundeb y Gymdogaeth",
           "instructions": "Dewiswch un radd ar gyfer pob llinell (dim ond un ar bob llinell).",
           "sections": ("Heddwch a Thawelwch", "Gwyrdd a Glân", "Cartref Clyd")},
    "ur": {"title": "محلے کے معاہدے کی نگرانی کا فارم",
           "instructions": "ہر سطر کے لیے ایک درجہ چنیں (ہر سطر پر صرف ایک)۔",
           "sections": ("امن و سکون", "سرسبز اور صاف", "پیارا گھر")},
}

# Version 1 of the demo's street form had other instructions (see server/demo.py).
OLD_STREET_INSTRUCTIONS = {"cy": "Rhowch X yn y blwch cywir.", "ur": "صحیح خانے میں X لگائیں۔"}

AGREEMENT_TRANSLATIONS = {
    "cy": {
        "title": "Y Fargen — Cytundeb y Gymdogaeth",
        "summary": "Beth mae'r cyngor a'i bartneriaid yn ei addo, a beth mae trigolion yn ei addo, i gadw ein "
                   "cymdogaeth yn gartref diogel a hapus, yn heddychlon ac yn dawel, yn wyrdd ac yn lân.",
        "themes.home_sweet_home.name": "Cartref Clyd",
        "themes.home_sweet_home.strapline": "Er mwyn cartref a chymuned ddiogel a hapus",
        "themes.peace_and_quiet.name": "Heddwch a Thawelwch",
        "themes.peace_and_quiet.strapline": "Cadw eich strydoedd yn saff ac yn ddiogel",
        "themes.green_and_clean.name": "Gwyrdd a Glân",
        "themes.green_and_clean.strapline": "Er mwyn strydoedd glân",
        "our_part.council_tax.text": "Cadw eich Treth Gyngor ymhlith yr isaf",
        "our_part.support_each_other.text": "Helpu cymunedau i gefnogi ei gilydd",
        "our_part.red_tape.text": "Torri biwrocratiaeth a rhoi gwerth am arian",
        "our_part.services_around_you.text": "Llunio gwasanaethau o'ch cwmpas chi a'ch teulu",
        "our_part.young_people.text": "Creu cyfleoedd i bobl ifanc",
        "our_part.local_economy.text": "Cefnogi'r economi leol i dyfu",
        "our_part.listen.text": "Gwrando, a bod yn agored, yn onest ac yn gyfeillgar",
        "our_part.believe_council.text": "Credu yn ein bwrdeistref",
        "your_part.recycle.text": "Ailgylchu mwy, ailgylchu'n iawn",
        "your_part.get_involved.text": "Cymryd rhan yn eich cymuned",
        "your_part.get_online.text": "Mynd ar-lein",
        "your_part.healthy.text": "Bod yn iach ac yn egnïol",
        "your_part.protect.text": "Helpu i amddiffyn plant a phobl agored i niwed",
        "your_part.local_businesses.text": "Cefnogi eich busnesau lleol",
        "your_part.have_your_say.text": "Dweud eich dweud, a dweud wrthym os ydym yn gwneud camgymeriad",
        "your_part.believe_residents.text": "Credu yn ein bwrdeistref",
        "standards.bins_weekly.text": "Biniau'n cael eu gwagio bob wythnos",
        "standards.missed_bin.text": "Bin a fethwyd, ar ôl i chi roi gwybod amdano, yn cael ei gasglu o fewn 2 ddiwrnod gwaith",
        "standards.graffiti_5_days.text": "Graffiti'n cael ei dynnu o fewn 5 diwrnod gwaith",
        "standards.offensive_graffiti.text": "Graffiti sarhaus yn cael ei dynnu o fewn 24 awr",
        "standards.fly_tipping.text": "Tipio anghyfreithlon yn cael ei glirio o fewn 3 diwrnod gwaith",
        "standards.street_lights.text": "Namau ar oleuadau stryd yn cael eu trwsio o fewn 7 diwrnod",
        "standards.abandoned_vehicles.text": "Cerbydau wedi'u gadael yn cael eu harchwilio o fewn 3 diwrnod gwaith",
        "standards.answer_calls.text": "Galwadau ffôn yn cael eu hateb o fewn 2 funud",
        "standards.reply_online.text": "Adroddiadau ar-lein yn cael eu cydnabod o fewn 1 diwrnod gwaith",
    },
    "ur": {
        "title": "ہمارا معاہدہ — محلے کا معاہدہ",
        "summary": "کونسل اور اس کے شراکت دار کیا وعدہ کرتے ہیں، اور رہائشی کیا وعدہ کرتے ہیں، تاکہ ہمارا محلہ "
                   "ایک محفوظ اور خوشگوار گھر، پُرامن اور پُرسکون، سرسبز اور صاف رہے۔",
        "themes.home_sweet_home.name": "پیارا گھر",
        "themes.home_sweet_home.strapline": "ایک محفوظ اور خوشگوار گھر اور برادری کے لیے",
        "themes.peace_and_quiet.name": "امن و سکون",
        "themes.peace_and_quiet.strapline": "آپ کی گلیوں کو محفوظ اور پُرامن رکھنا",
        "themes.green_and_clean.name": "سرسبز اور صاف",
        "themes.green_and_clean.strapline": "صاف گلیوں کے لیے",
        "our_part.council_tax.text": "آپ کا کونسل ٹیکس سب سے کم ٹیکسوں میں رکھنا",
        "our_part.support_each_other.text": "برادریوں کی مدد کرنا تاکہ وہ ایک دوسرے کا ساتھ دیں",
        "our_part.red_tape.text": "دفتری رکاوٹیں کم کرنا اور پیسے کی پوری قدر دینا",
        "our_part.services_around_you.text": "خدمات کو آپ اور آپ کے خاندان کی ضرورت کے مطابق بنانا",
        "our_part.young_people.text": "نوجوانوں کے لیے مواقع پیدا کرنا",
        "our_part.local_economy.text": "مقامی معیشت کو بڑھنے میں مدد دینا",
        "our_part.listen.text": "بات سننا، اور کھلے دل، ایمانداری اور دوستی سے پیش آنا",
        "our_part.believe_council.text": "اپنے علاقے پر یقین رکھنا",
        "your_part.recycle.text": "زیادہ ری سائیکل کریں، صحیح طریقے سے ری سائیکل کریں",
        "your_part.get_involved.text": "اپنی برادری کے کاموں میں حصہ لیں",
        "your_part.get_online.text": "انٹرنیٹ استعمال کرنا سیکھیں",
        "your_part.healthy.text": "صحت مند اور چست رہیں",
        "your_part.protect.text": "بچوں اور کمزور لوگوں کی حفاظت میں مدد کریں",
        "your_part.local_businesses.text": "اپنے مقامی کاروباروں کا ساتھ دیں",
        "your_part.have_your_say.text": "اپنی رائے دیں اور اگر ہم غلطی کریں تو ہمیں بتائیں",
        "your_part.believe_residents.text": "اپنے علاقے پر یقین رکھیں",
        "standards.bins_weekly.text": "کوڑے دان ہر ہفتے خالی کیے جائیں",
        "standards.missed_bin.text": "رہ جانے والے کوڑے دان کی اطلاع پر اسے 2 کاروباری دنوں میں اٹھایا جائے",
        "standards.graffiti_5_days.text": "گرافٹی 5 کاروباری دنوں میں ہٹائی جائے",
        "standards.offensive_graffiti.text": "توہین آمیز گرافٹی 24 گھنٹوں کے اندر ہٹائی جائے",
        "standards.fly_tipping.text": "غیر قانونی طور پر پھینکا گیا کوڑا 3 کاروباری دنوں میں صاف کیا جائے",
        "standards.street_lights.text": "اسٹریٹ لائٹ کی خرابیاں 7 دنوں میں ٹھیک کی جائیں",
        "standards.abandoned_vehicles.text": "لاوارث گاڑیوں کا 3 کاروباری دنوں میں معائنہ کیا جائے",
        "standards.answer_calls.text": "فون کالوں کا جواب 2 منٹ کے اندر دیا جائے",
        "standards.reply_online.text": "آن لائن رپورٹوں کی وصولی کی تصدیق 1 کاروباری دن میں کی جائے",
    },
}

_CHECKLIST = {
    "cy": {"title": "Rhestr wirio'r cytundeb — ydy'r Fargen yn cael ei chadw?",
           "instructions": "Ar gyfer pob addewid, dywedwch a yw'n cael ei gadw lle rydych chi'n byw, ac "
                           "ychwanegwch sylw os gallwch chi.",
           "sections.0.theme": "Ein rhan ni (y cyngor a'i bartneriaid)",
           "sections.1.theme": "Eich rhan chi (trigolion)"},
    "ur": {"title": "معاہدے کی چیک لسٹ — کیا معاہدے پر عمل ہو رہا ہے؟",
           "instructions": "ہر وعدے کے بارے میں بتائیں کہ آپ کے علاقے میں اس پر عمل ہو رہا ہے یا نہیں، اور اگر ہو "
                           "سکے تو تبصرہ بھی لکھیں۔",
           "sections.0.theme": "ہمارا حصہ (کونسل اور شراکت دار)",
           "sections.1.theme": "آپ کا حصہ (رہائشی)"},
}

_MYSTERY_SHOP = {
    "cy": {
        "title": "Siopa cudd",
        "instructions": "Profwch wasanaeth fel y byddai unrhyw breswylydd yn ei wneud, yna cofnodwch beth ddigwyddodd.",
        "sections.0.theme": "Y cyswllt",
        "sections.1.theme": "Safonau gwasanaeth",
        "sections.2.theme": "Eich profiad",
        "lines.scenario.label": "Sefyllfa",
        "lines.scenario.options.0": "Rhoi gwybod am fin a fethwyd",
        "lines.scenario.options.1": "Rhoi gwybod am dipio anghyfreithlon",
        "lines.scenario.options.2": "Rhoi gwybod am graffiti",
        "lines.scenario.options.3": "Rhoi gwybod am nam ar olau stryd",
        "lines.scenario.options.4": "Rhoi gwybod am gerbyd wedi'i adael",
        "lines.scenario.options.5": "Holi am ailgylchu",
        "lines.channel.label": "Sut y gwnaethoch chi gysylltu",
        "lines.channel.options.0": "Ffôn",
        "lines.channel.options.1": "Ar-lein",
        "lines.channel.options.2": "Wyneb yn wyneb",
        "lines.contacted_at.label": "Pryd y gwnaethoch chi gysylltu",
        "lines.answered_at.label": "Pryd y cawsoch chi ateb (gadewch hyn yn wag os na chawsoch chi un)",
        "lines.resolved_at.label": "Pryd y cafodd y broblem ei datrys (os cafodd hi)",
        "lines.treated_well.label": "A gawsoch chi eich trin mewn ffordd gyfeillgar a chymwynasgar?",
        "lines.treated_well.options.0": "Do",
        "lines.treated_well.options.1": "Yn rhannol",
        "lines.treated_well.options.2": "Naddo",
        "lines.what_happened.label": "Beth ddigwyddodd, yn eich geiriau eich hun",
    },
    "ur": {
        "title": "خفیہ جانچ",
        "instructions": "کسی بھی رہائشی کی طرح ایک سروس آزمائیں، پھر لکھیں کہ کیا ہوا۔",
        "sections.0.theme": "رابطہ",
        "sections.1.theme": "سروس کے معیار",
        "sections.2.theme": "آپ کا تجربہ",
        "lines.scenario.label": "صورتِ حال",
        "lines.scenario.options.0": "رہ جانے والے کوڑے دان کی اطلاع دیں",
        "lines.scenario.options.1": "غیر قانونی طور پر پھینکے گئے کوڑے کی اطلاع دیں",
        "lines.scenario.options.2": "گرافٹی کی اطلاع دیں",
        "lines.scenario.options.3": "اسٹریٹ لائٹ کی خرابی کی اطلاع دیں",
        "lines.scenario.options.4": "لاوارث گاڑی کی اطلاع دیں",
        "lines.scenario.options.5": "ری سائیکلنگ کے بارے میں پوچھیں",
        "lines.channel.label": "آپ نے رابطہ کیسے کیا",
        "lines.channel.options.0": "فون",
        "lines.channel.options.1": "آن لائن",
        "lines.channel.options.2": "خود جا کر",
        "lines.contacted_at.label": "آپ نے کب رابطہ کیا",
        "lines.answered_at.label": "آپ کو جواب کب ملا (اگر جواب نہیں ملا تو خالی چھوڑ دیں)",
        "lines.resolved_at.label": "مسئلہ کب حل ہوا (اگر ہوا)",
        "lines.treated_well.label": "کیا آپ کے ساتھ دوستانہ اور مددگار رویہ رکھا گیا؟",
        "lines.treated_well.options.0": "جی ہاں",
        "lines.treated_well.options.1": "کسی حد تک",
        "lines.treated_well.options.2": "جی نہیں",
        "lines.what_happened.label": "کیا ہوا، اپنے الفاظ میں",
    },
}


def _street(language: str) -> dict:
    texts = {"title": _STREET[language]["title"], "instructions": _STREET[language]["instructions"]}
    texts |= {f"scale.{grade}": text for grade, text in _SCALE[language].items()}
    texts |= {f"sections.{n}.theme": theme for n, theme in enumerate(_STREET[language]["sections"])}
    for key, (label, *grades) in _STREET_LINES[language].items():
        texts[f"lines.{key}.label"] = label
        texts |= {f"lines.{key}.grades.{grade}": text for grade, text in zip("ABCD", grades)}
    return texts


def _checklist(language: str) -> dict:
    deal = AGREEMENT_TRANSLATIONS[language]
    texts = dict(_CHECKLIST[language])
    for part in ("our_part", "your_part"):
        for item in AGREEMENT[part]:
            texts[f"lines.{part}_{item['key']}.label"] = deal[f"{part}.{item['key']}.text"]
    return texts


def _mystery_shop(language: str) -> dict:
    deal = AGREEMENT_TRANSLATIONS[language]
    texts = dict(_MYSTERY_SHOP[language])
    for standard in AGREEMENT["standards"]:
        texts[f"lines.std_{standard['key']}.label"] = deal[f"standards.{standard['key']}.text"]
    return texts


STREET_TRANSLATIONS = {language: _street(language) for language in LANGUAGES}
OLD_STREET_TRANSLATIONS = {language: {**STREET_TRANSLATIONS[language], "instructions": OLD_STREET_INSTRUCTIONS[language]}
                           for language in LANGUAGES}
CHECKLIST_TRANSLATIONS = {language: _checklist(language) for language in LANGUAGES}
MYSTERY_SHOP_TRANSLATIONS = {language: _mystery_shop(language) for language in LANGUAGES}
FORM_TRANSLATIONS = {"street": STREET_TRANSLATIONS, "checklist": CHECKLIST_TRANSLATIONS,
                     "mystery_shop": MYSTERY_SHOP_TRANSLATIONS}
