import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getTextCorpus, TEXT_CORPUS_NAMES } from "../../../src/data/datasets/index.js";
import { normaliseWhitespace, paragraphs } from "../../../src/data/datasets/text-corpus.js";

describe("text corpora", () => {
  for (const name of TEXT_CORPUS_NAMES) {
    it(`${name}: non-empty, about a tenth held out, splits disjoint`, () => {
      const corpus = getTextCorpus(name);
      const train = corpus.split("train");
      const test = corpus.split("test");
      assert.ok(train.units.length > 100 && test.units.length > 10);
      const fraction = test.text.length / (train.text.length + test.text.length);
      assert.ok(fraction > 0.05 && fraction < 0.15, `held-out fraction ${fraction}`);
      const trainUnits = new Set(train.units);
      assert.equal(test.units.filter((u) => trainUnits.has(u)).length, 0);
      assert.equal(train.text, train.units.join("\n\n"));
      assert.ok(corpus.licence.length > 0);
      console.log(
        `${name}: train ${train.units.length} units / ${train.text.length} chars, test ${test.units.length} / ${test.text.length}`,
      );
    });

    it(`${name}: deterministic and normalised`, () => {
      const a = getTextCorpus(name).split("test");
      const b = getTextCorpus(name).split("test");
      assert.deepEqual(a.units, b.units);
      for (const unit of a.units) {
        assert.equal(unit, unit.trim());
        assert.ok(!/[ \t]{2}|\r|\n\n/.test(unit), "whitespace runs or blank lines inside a unit");
      }
    });
  }

  it("moby-dick: starts with the etymology, holds out chapter 10, keeps 'Call me Ishmael.'", () => {
    const corpus = getTextCorpus("moby-dick");
    const train = corpus.split("train");
    const test = corpus.split("test");
    assert.match(train.units[0]!, /^ETYMOLOGY\./);
    assert.ok(train.units.some((u) => u.startsWith("Call me Ishmael.")));
    assert.equal(test.units[0], "CHAPTER 10. A Bosom Friend.");
    assert.ok(!train.units.includes("CHAPTER 10. A Bosom Friend."));
  });

  it("sotu: one unit per address, the first held out is the tenth", () => {
    const test = getTextCorpus("sotu").split("test");
    assert.match(test.units[0]!, /^Gentlemen of the Senate/);
  });

  it("normalises whitespace moderately", () => {
    assert.equal(normaliseWhitespace(" a \t b\r\nc  \r\n\r\n\r\n\r\nd "), "a b\nc\n\nd");
    assert.deepEqual(paragraphs("one\ntwo\n\n\n three \n"), ["one\ntwo", "three"]);
  });

  it("rejects unknown names and splits", () => {
    assert.throws(
      () => getTextCorpus("bible"),
      /unknown text corpus 'bible' \(expected one of: moby-dick, sotu\)/,
    );
    assert.throws(
      () => getTextCorpus("sotu").split("valid" as "test"),
      /sotu: unknown split 'valid'/,
    );
  });
});
