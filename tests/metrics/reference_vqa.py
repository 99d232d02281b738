"""Straightforward ports of the VQA evaluators' loops, used ONLY as independent references in tests.

* :class:`OfficialVQAEval` follows GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` (current
  version): strip answers and prediction, normalise everything only if the answers disagree, 10 x 9 comparison loop.
* :class:`LegacyVQAEval` follows the copy in LAVIS ``lavis/common/vqa_tools/vqa_eval.py`` (and ALBEF): prediction
  always normalised, answers punctuation-processed only when they disagree, never stripped.

Deliberately slow and literal: no caching, no closed form, answer dicts with ``answer_id`` like the annotation files,
and the official quirks kept (the regex with the lookahead typo, ``re.UNICODE`` passed as the ``count`` of ``sub``).
Only the 120-entry contraction table is shared with the implementation; ``test_vqa.py`` pins it by hash against the
official source.
"""

from __future__ import annotations

import re

from harness.metrics.vqa import CONTRACTIONS


class OfficialVQAEval:
    """The official evaluator's per-question loop and aggregation (printing and bookkeeping left out)."""

    def __init__(self) -> None:
        self.contractions = dict(CONTRACTIONS)
        self.manualMap = {
            "none": "0",
            "zero": "0",
            "one": "1",
            "two": "2",
            "three": "3",
            "four": "4",
            "five": "5",
            "six": "6",
            "seven": "7",
            "eight": "8",
            "nine": "9",
            "ten": "10",
        }
        self.articles = ["a", "an", "the"]
        self.periodStrip = re.compile(r"(?!<=\d)(\.)(?!\d)")
        self.commaStrip = re.compile(r"(\d)(\,)(\d)")
        self.punct = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
                      "?", "!"]  # fmt: skip

    def processPunctuation(self, inText: str) -> str:
        outText = inText
        for p in self.punct:
            if (p + " " in inText or " " + p in inText) or (re.search(self.commaStrip, inText) is not None):
                outText = outText.replace(p, "")
            else:
                outText = outText.replace(p, " ")
        # The official code calls periodStrip.sub("", outText, re.UNICODE): the flag lands in `count`.
        outText = self.periodStrip.sub("", outText, count=re.UNICODE)
        return outText

    def processDigitArticle(self, inText: str) -> str:
        outText = []
        tempText = inText.lower().split()
        for word in tempText:
            word = self.manualMap.setdefault(word, word)
            if word not in self.articles:
                outText.append(word)
            else:
                pass
        for wordId, word in enumerate(outText):
            if word in self.contractions:
                outText[wordId] = self.contractions[word]
        outText = " ".join(outText)
        return outText

    def question_accuracy(self, resAns: str, gtAnswers: list[str]) -> float:
        answers = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(gtAnswers)]
        for ansDic in answers:
            ansDic["answer"] = ansDic["answer"].replace("\n", " ")
            ansDic["answer"] = ansDic["answer"].replace("\t", " ")
            ansDic["answer"] = ansDic["answer"].strip()
        resAns = resAns.replace("\n", " ")
        resAns = resAns.replace("\t", " ")
        resAns = resAns.strip()
        gtAcc = []
        gtAnswersStripped = [ans["answer"] for ans in answers]
        if len(set(gtAnswersStripped)) > 1:
            for ansDic in answers:
                ansDic["answer"] = self.processPunctuation(ansDic["answer"])
                ansDic["answer"] = self.processDigitArticle(ansDic["answer"])
            resAns = self.processPunctuation(resAns)
            resAns = self.processDigitArticle(resAns)
        for gtAnsDatum in answers:
            otherGTAns = [item for item in answers if item != gtAnsDatum]
            matchingAns = [item for item in otherGTAns if item["answer"] == resAns]
            acc = min(1, float(len(matchingAns)) / 3)
            gtAcc.append(acc)
        avgGTAcc = float(sum(gtAcc)) / len(gtAcc)
        return avgGTAcc

    def evaluate(
        self,
        predictions: list[str],
        answers: list[list[str]],
        answer_types: list[str],
        question_types: list[str],
        n: int = 2,
    ) -> dict:
        accQA = []
        accQuesType: dict = {}
        accAnsType: dict = {}
        for resAns, gt, ansType, quesType in zip(predictions, answers, answer_types, question_types):
            avgGTAcc = self.question_accuracy(resAns, gt)
            accQA.append(avgGTAcc)
            if quesType not in accQuesType:
                accQuesType[quesType] = []
            accQuesType[quesType].append(avgGTAcc)
            if ansType not in accAnsType:
                accAnsType[ansType] = []
            accAnsType[ansType].append(avgGTAcc)
        self.accQA = accQA  # per-question accuracies of the last evaluate() call
        return {
            "overall": round(100 * float(sum(accQA)) / len(accQA), n),
            "perQuestionType": {q: round(100 * float(sum(v)) / len(v), n) for q, v in accQuesType.items()},
            "perAnswerType": {a: round(100 * float(sum(v)) / len(v), n) for a, v in accAnsType.items()},
        }


class LegacyVQAEval(OfficialVQAEval):
    """The LAVIS/ALBEF copy: a different per-question loop, same normalisation functions and aggregation."""

    def question_accuracy(self, resAns: str, gtAnswers: list[str]) -> float:
        answers = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(gtAnswers)]
        resAns = resAns.replace("\n", " ")
        resAns = resAns.replace("\t", " ")
        resAns = resAns.strip()
        resAns = self.processPunctuation(resAns)
        resAns = self.processDigitArticle(resAns)
        gtAcc = []
        gtAnswersRaw = [ans["answer"] for ans in answers]
        if len(set(gtAnswersRaw)) > 1:
            for ansDic in answers:
                ansDic["answer"] = self.processPunctuation(ansDic["answer"])
        for gtAnsDatum in answers:
            otherGTAns = [item for item in answers if item != gtAnsDatum]
            matchingAns = [item for item in otherGTAns if item["answer"] == resAns]
            acc = min(1, float(len(matchingAns)) / 3)
            gtAcc.append(acc)
        avgGTAcc = float(sum(gtAcc)) / len(gtAcc)
        return avgGTAcc
