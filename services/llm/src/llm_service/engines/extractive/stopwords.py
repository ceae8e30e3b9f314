"""Words that carry no topic: English function words plus the filler of spoken meetings.

Kept as plain word lists on purpose: a template user can read them and tune them for their
domain.
"""

from __future__ import annotations


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


FUNCTION_WORDS = word_set(
    """
    a about above across after afterwards again against all almost alone along already also
    although always am among amongst an and another any anyhow anyone anything anyway anywhere
    are aren't around as at back be became because become becomes becoming been before
    beforehand behind being below beside besides between beyond both but by can can't cannot
    could couldn't did didn't do does doesn't doing don't done down during each either else
    elsewhere enough etc even ever every everyone everything everywhere except few for former
    formerly from further had hadn't has hasn't have haven't having he he'd he'll he's hence her
    here here's hereafter hereby herein hers herself him himself his how how's however i i'd
    i'll i'm i've if in indeed into is isn't it it'd it'll it's its itself just last latter
    latterly least less let let's lets ll many may maybe me meanwhile might mine more moreover
    most mostly much must mustn't my myself namely neither never nevertheless next no nobody
    none noone nor not nothing now nowhere of off often on once one only onto or other others
    otherwise our ours ourselves out over own per perhaps rather re same several shall shan't she
    she'd she'll she's should shouldn't since so some somehow someone something sometime
    sometimes somewhere still such than that that's the their theirs them themselves then thence
    there there's thereafter thereby therefore therein thereupon these they they'd they'll
    they're they've this those though through throughout thru thus to together too toward
    towards under until up upon us very via was wasn't we we'd we'll we're we've well were
    weren't what what's whatever when when's whence whenever where where's whereafter whereas
    whereby wherein whereupon wherever whether which while whither who who's whoever whole whom
    whose why why's will with within without won't would wouldn't yet you you'd you'll you're
    you've your yours yourself yourselves s t d m ve
    """
)

# Spoken filler, hedges and verbs so generic that they never name what a meeting was about.
CONVERSATIONAL_WORDS = word_set(
    """
    actually agree agreed alright anybody ask asked basically bit bunch come comes coming
    course definitely did do doing end everybody fine folks gets getting give go goes going gone
    good got gotta great guess guys happen happy hear hello hey hi hmm idea important kind know
    let like likely look looking looks lot lots make makes making mean means mention mentioned
    need needs nice ok okay oh people point pretty probably put quick quickly quite real really
    right said say saying says see seems sense sort sorry sound sounds start started stuff sure
    take takes talk talked talking tell thank thanks thing things think thinking thought time
    today tomorrow try trying uh um umm understand use used want wanted wants way week weeks
    went work working yeah yep yes yesterday wait able already minute minutes morning
    afternoon evening day days month months year years monday tuesday wednesday thursday friday
    saturday sunday january february march april may june july august september october
    november december new old big small little whole best better first second third
    another different same someone anyone please item items action meeting call team
    everyone's today's tomorrow's week's one two three four five six seven eight nine ten
    hundred thousand half keep keeps kept
    """
)

STOPWORDS = FUNCTION_WORDS | CONVERSATIONAL_WORDS
